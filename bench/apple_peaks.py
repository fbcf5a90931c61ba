"""Every Apple M1–M5 GPU by its peaks: memory bandwidth and FP32/FP16 TFLOP/s, each with its source and range.

Why a table of its own: a Metal row is judged against its chip's ceilings (percent of peak,
and the plausibility guard that catches a harness that never waited, bench.roofline), and
Apple publishes little. What is published and what is derived are kept apart:

* **Memory bandwidth** is Apple's figure for every part (press releases and tech-spec pages;
  collected with links in shared/research/field-2026-12-03.md §3.1). It differs between core
  counts of one chip (M3 Max 300 vs 400 GB/s, M4 Max 410 vs 546, M5 Max 460 vs 614), which is
  why a row records its GPU core count (`gpu_cores`, bench.machine.gpu_cores).
* **FP32 TFLOP/s**: Apple published GPU FLOP/s for M1 and M2 only. Every other figure is
  GPU cores × 128 FP32 lanes × 2 (FMA) × clock, and third parties assume different clocks:
  1.398–1.6 GHz for M3, 1.47–1.8 GHz for M4 (they disagree by ~20%: M4 Max 40-core 15.1,
  17.2 or 18.4); M5's 1.578 GHz was measured with powermetrics on an M5 (its ALU roofline
  reached 3.76 of 4.04 TFLOP/s). So M3–M5 carry a range, and the **high end** is the peak
  the guard uses (percent of peak is then a lower bound). Parts Apple quoted only for the
  largest core count (M1 Pro 14-core, …) are Apple's clock times their own core count.
* **FP16**: on M1–M4 the ALUs run fp16 at the fp32 rate ("F16 is neither faster nor slower
  than F32", philipturner/metal-benchmarks), and bf16 is no faster (emulated on M1/M2). M5
  adds the GPU's Neural Accelerators, a second fp16/bf16 matrix roof: projected at ~1024 FLOP
  per core and cycle (kavanaghpatrick/gpu-forge#15: "Projected M5 Max: ~70 TFLOPS FP16");
  MLX measured 58.2 TFLOPS fp16 GEMM on an M5 Max 40-core (ml-explore/mlx#3211). Both roofs
  are listed; the guard uses the higher, since a matmul may take either path.
* **TF32**: no Apple GPU before M5 has a TF32-class mode (its bound is the fp32 one); on M5
  MLX can send fp32 matmuls to the Neural Accelerators (mlx#3860), bounded by their fp16 roof.

M5 Ultra: no Apple-sourced figure was found, so it is not in the table (an unknown chip gets
no peak and no verdict, never a guessed one).

`python -m bench.apple_peaks [CHIP ...] [--markdown]` prints the table (all chips, or those named).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

FLOP_PER_CORE_CYCLE = 256  # 128 FP32 lanes × 2 (fused multiply-add) per GPU core and clock
NAX_FLOP_PER_CORE_CYCLE = 1024  # M5 GPU Neural Accelerators, fp16, projected (gpu-forge#15)

APPLE_BW = "Apple (press releases and tech specs; field-2026-12-03.md §3.1)"
APPLE_FLOPS = "Apple (published GPU TFLOPS)"


@dataclass(frozen=True)
class ApplePart:
    """One GPU configuration of one chip, with where each figure comes from."""

    chip: str  # "M3 Max"
    gpu_cores: int
    gbps: float
    fp32: tuple[float, float]  # TFLOP/s, low–high (equal where Apple published it)
    fp32_basis: str
    matrix_fp16: tuple[float, float] | None = None  # M5 Neural Accelerators, TFLOP/s low–high
    matrix_basis: str = ""
    gbps_source: str = APPLE_BW

    @property
    def name(self) -> str:
        return f"Apple {self.chip} ({self.gpu_cores}-core GPU)"

    def tflops(self, dtype: str) -> float:
        """The bound for `dtype`: the highest roof any path of this GPU has for it."""
        if dtype in ("fp16", "bf16", "tf32") and self.matrix_fp16:
            return max(self.fp32[1], self.matrix_fp16[1])
        return self.fp32[1]

    def source(self) -> str:
        text = f"{self.name}: {self.gbps:g} GB/s ({self.gbps_source}); FP32 {_range(self.fp32)} TFLOP/s ({self.fp32_basis})"
        if self.matrix_fp16:
            text += f"; FP16 Neural Accelerators {_range(self.matrix_fp16)} TFLOP/s ({self.matrix_basis})"
        return text + "; the high end is the peak"


def _range(pair: tuple[float, float]) -> str:
    low, high = pair
    return f"{low:.3g}" if abs(high - low) < 0.005 else f"{low:.3g}–{high:.3g}"


def _published(chip: str, cores: int, gbps: float, tflops: float, of_cores: int | None = None) -> ApplePart:
    """Apple's FLOP/s figure; for a smaller part of the same chip, Apple's clock × its cores."""
    if of_cores is None or of_cores == cores:
        return ApplePart(chip, cores, gbps, (tflops, tflops), APPLE_FLOPS)
    scaled = tflops * cores / of_cores
    return ApplePart(chip, cores, gbps, (scaled, scaled), f"Apple's {of_cores}-core figure ({tflops:g}) × {cores}/{of_cores} cores")


def _derived(chip: str, cores: int, gbps: float, ghz: tuple[float, float], clocks: str) -> ApplePart:
    low, high = (cores * FLOP_PER_CORE_CYCLE * f / 1e3 for f in ghz)
    basis = f"{cores} cores × {FLOP_PER_CORE_CYCLE} FLOP/cycle × {ghz[0]:g}–{ghz[1]:g} GHz ({clocks})"
    return ApplePart(chip, cores, gbps, (low, high), basis)


M3_CLOCK, M3_CLOCKS = (1.398, 1.6), "clocks third parties assume; Apple publishes none"
M4_CLOCK, M4_CLOCKS = (1.47, 1.8), "clocks third parties assume; Apple publishes none"
M5_CLOCK = 1.578  # GHz, powermetrics on an M5 (michaelstinkerings.org/apple-m5-gpu-roofline-analysis)
M5_NAX_HIGH = 70.0 / (40 * NAX_FLOP_PER_CORE_CYCLE) * 1e3  # GHz-equivalent of gpu-forge's "~70 TFLOPS" for 40 cores


def _m5(chip: str, cores: int, gbps: float) -> ApplePart:
    alu = cores * FLOP_PER_CORE_CYCLE * M5_CLOCK / 1e3
    nax = (cores * NAX_FLOP_PER_CORE_CYCLE * M5_CLOCK / 1e3, cores * NAX_FLOP_PER_CORE_CYCLE * M5_NAX_HIGH / 1e3)
    return ApplePart(
        chip, cores, gbps, (alu, alu),
        f"{cores} cores × {FLOP_PER_CORE_CYCLE} FLOP/cycle × {M5_CLOCK} GHz (clock measured on an M5 base; not measured on Pro/Max)",
        nax, f"{cores} cores × ~{NAX_FLOP_PER_CORE_CYCLE} FLOP/cycle, projected (gpu-forge#15, ~70 for 40 cores); "
             "MLX measured 58.2 on a 40-core M5 Max (mlx#3211)",
    )


PARTS: tuple[ApplePart, ...] = (
    _published("M1", 7, 68.25, 2.6, of_cores=8),
    _published("M1", 8, 68.25, 2.6),
    _published("M1 Pro", 14, 200.0, 5.2, of_cores=16),
    _published("M1 Pro", 16, 200.0, 5.2),
    _published("M1 Max", 24, 400.0, 10.4, of_cores=32),
    _published("M1 Max", 32, 400.0, 10.4),
    _published("M1 Ultra", 48, 800.0, 21.0, of_cores=64),
    _published("M1 Ultra", 64, 800.0, 21.0),
    _published("M2", 8, 100.0, 3.6, of_cores=10),
    _published("M2", 10, 100.0, 3.6),
    _published("M2 Pro", 16, 200.0, 6.8, of_cores=19),
    _published("M2 Pro", 19, 200.0, 6.8),
    _published("M2 Max", 30, 400.0, 13.6, of_cores=38),
    _published("M2 Max", 38, 400.0, 13.6),
    _published("M2 Ultra", 60, 800.0, 27.2, of_cores=76),
    _published("M2 Ultra", 76, 800.0, 27.2),
    _derived("M3", 8, 100.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3", 10, 100.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Pro", 14, 150.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Pro", 18, 150.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Max", 30, 300.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Max", 40, 400.0, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Ultra", 60, 819.2, M3_CLOCK, M3_CLOCKS),
    _derived("M3 Ultra", 80, 819.2, M3_CLOCK, M3_CLOCKS),
    _derived("M4", 8, 120.0, M4_CLOCK, M4_CLOCKS),
    _derived("M4", 10, 120.0, M4_CLOCK, M4_CLOCKS),
    _derived("M4 Pro", 16, 273.0, M4_CLOCK, M4_CLOCKS),
    _derived("M4 Pro", 20, 273.0, M4_CLOCK, M4_CLOCKS),
    _derived("M4 Max", 32, 410.0, M4_CLOCK, M4_CLOCKS),
    _derived("M4 Max", 40, 546.0, M4_CLOCK, M4_CLOCKS),
    _m5("M5", 10, 153.0),
    _m5("M5 Pro", 16, 307.0),
    _m5("M5 Pro", 20, 307.0),
    _m5("M5 Max", 32, 460.0),
    _m5("M5 Max", 40, 614.0),
)

_CHIP = re.compile(r"\bM([1-9])(?:\s+(Pro|Max|Ultra))?\b")


def chip_of(name: str | None) -> str | None:
    """'M3 Max' from 'Apple M3 Max', 'Apple M3 Max (40-core GPU)', 'M3 Max'; None if no M chip."""
    found = _CHIP.search(name or "")
    if not found:
        return None
    return f"M{found.group(1)}" + (f" {found.group(2)}" if found.group(2) else "")


def find(name: str | None, gpu_cores: int | None) -> tuple[ApplePart, str] | None:
    """The part `name` (a chip or device name) with `gpu_cores` GPU cores, and a note. Core
    count unknown (or not one Apple made): the chip's largest part, said so, since the
    plausibility guard must never call a real result impossible."""
    chip = chip_of(name)
    parts = [p for p in PARTS if p.chip == chip]
    if not parts:
        return None
    exact = [p for p in parts if p.gpu_cores == gpu_cores]
    if exact:
        return exact[0], ""
    largest = max(parts, key=lambda p: p.gpu_cores)
    why = "GPU core count unknown" if gpu_cores is None else f"no {gpu_cores}-core {chip} known"
    return largest, f"{why}: the largest {chip} ({largest.gpu_cores}-core) bounds it"


# -- the table, for people -------------------------------------------------------------
COLUMNS = ("chip", "GPU cores", "memory GB/s", "FP32 TFLOP/s", "FP16 ALU TFLOP/s", "FP16 matrix TFLOP/s", "FP32 basis")


def rows(chips: Iterable[str] = ()) -> list[tuple[str, ...]]:
    """One line per part of the chips named (every part when none): text cells."""
    wanted = {chip_of(c) or c for c in chips}
    unknown = wanted - {p.chip for p in PARTS}
    if unknown:
        raise ValueError(f"unknown chip {', '.join(sorted(unknown))!s} (choose from: {', '.join(dict.fromkeys(p.chip for p in PARTS))})")
    return [
        (f"Apple {p.chip}", str(p.gpu_cores), f"{p.gbps:g}", _range(p.fp32), _range(p.fp32),
         _range(p.matrix_fp16) if p.matrix_fp16 else "= ALU", p.fp32_basis)
        for p in PARTS if not wanted or p.chip in wanted
    ]


def markdown(chips: Iterable[str] = ()) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(chips)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.apple_peaks", description="Apple M1–M5 GPU peaks, with sources")
    ap.add_argument("chips", nargs="*", help="chips to show, e.g. 'M3 Max' M4 'Apple M5 Max' (default: all)")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table instead of the terminal one")
    args = ap.parse_args(argv)
    try:
        table_rows = rows(args.chips)
    except ValueError as exc:
        print(f"python -m bench.apple_peaks: {exc}", file=sys.stderr)
        return 2
    if args.markdown:
        print(markdown(args.chips))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Apple GPU peaks (bench.apple_peaks; bandwidth: Apple; M3+ FLOP/s: cores × clock)")
        for col in COLUMNS:
            table.add_column(col, overflow="fold")
        for r in table_rows:
            table.add_row(*r)
        Console().print(table)
    print("FP16 on M1-M4 runs at the FP32 rate; M5 adds the GPU Neural Accelerators' matrix roof. "
          "Ranges: third-party clocks; the high end is the peak the plausibility guard uses.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
