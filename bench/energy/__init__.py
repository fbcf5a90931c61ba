"""Energy per case: which counters a backend is measured with, opened once per worker.

One module per source (nvml, rapl, apple), each a thin wrapper over Zeus's own reader;
`bench.energy.window` is the measurement protocol around the timed calls. The choice of
source per backend is made here and nowhere else:

* cuda  — the GPU's board energy (NVML); the host CPU's RAPL rails are read beside it
  where readable, but the row's figure is the board's (the GPU is what the row measured).
* metal — the whole SoC (IOReport: CPU, GPU, GPU SRAM, ANE, DRAM): on unified memory
  every rail serves the computation.
* cpu   — RAPL packages and DRAM on Linux; the SoC on Apple Silicon.

Zeus (ml.energy) is the library: its device layer (`zeus.device`) reads NVML's
total-energy counter, RAPL with wrap-around tracking and, with `zeus-apple-silicon`,
IOReport. ZeusMonitor itself is not used: it swallows why a source is missing (a CPU
without readable RAPL becomes an empty list), synchronises through torch by default
(wrong for JAX, MLX, TF; the adapter's barrier is the right one), and importing it pulls
scikit-learn into every worker (1.8 s here, measured with `python -X importtime`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from bench.energy.base import EnergySource, EnergyUnavailable, describe


@dataclass
class Meter:
    """The sources one backend is measured with: `sources[0]` defines the row's scope."""

    sources: list[EnergySource]
    skipped: list[str] = field(default_factory=list)  # extra sources not read here, with why

    @property
    def name(self) -> str:
        return " + ".join(s.name for s in self.sources)

    @property
    def scope(self) -> tuple[str, ...]:
        return self.sources[0].scope

    def begin(self, key: str) -> None:
        for source in self.sources:
            source.begin(key)

    def end(self, key: str) -> dict[str, float]:
        rails: dict[str, float] = {}
        for source in self.sources:
            rails.update(source.end(key))
        return rails

    def limit_w(self) -> float | None:
        return self.sources[0].limit_w()

    def limit_tolerance(self) -> float:
        """The first source's stated reading accuracy (fraction); 0 where it states none."""
        return float(getattr(self.sources[0], "limit_tolerance", 0.0))


def _nvml() -> EnergySource:
    from bench.energy.nvml import NvmlSource

    return NvmlSource(0)


def _rapl() -> EnergySource:
    from bench.energy.rapl import RaplSource

    return RaplSource()


def _apple() -> EnergySource:
    from bench.energy.apple import AppleSource

    return AppleSource()


def _plan(backend: str, platform: str) -> tuple[list[Callable[[], EnergySource]], list[Callable[[], EnergySource]]]:
    """(sources that define the scope — the first that opens wins, extra sources)."""
    if backend == "cuda":
        return [_nvml], [_rapl]
    if backend == "metal":
        return [_apple], []
    if backend == "cpu":
        return ([_apple] if platform == "darwin" else [_rapl]), []
    return [], []


def open_meter(backend: str, platform: str = sys.platform) -> Meter | str:
    """The Meter for `backend`, or the reason no energy can be measured for it (one line)."""
    primary, extras = _plan(backend, platform)
    if not primary:
        return f"no energy source for backend {backend!r}"
    reasons = []
    for make in primary:
        try:
            meter = Meter([make()])
            break
        except EnergyUnavailable as exc:
            reasons.append(str(exc))
        except Exception as exc:  # a library failing while it opens is a reason too, never a crash
            reasons.append(describe(exc))
    else:
        return "; ".join(reasons)
    for make in extras:
        try:
            meter.sources.append(make())
        except Exception as exc:
            meter.skipped.append(str(exc) if isinstance(exc, EnergyUnavailable) else describe(exc))
    return meter


__all__ = ["EnergySource", "EnergyUnavailable", "Meter", "open_meter"]
