"""Apple Silicon: IOReport's "Energy Model" counters, read through Zeus and zeus-apple-silicon.

zeus-apple-silicon subscribes to IOReport's "Energy Model" group (no root, unlike
`powermetrics`) and parses each channel into `AppleEnergyMetrics` fields in integer mJ:
"CPU Energy" → cpu_total_mj, "GPU Energy" → gpu_mj, "GPU SRAM*" → gpu_sram_mj, "ANE*" →
ane_mj, "DRAM*" → dram_mj, plus per-core and per-cluster CPU fields (apple_energy.hpp,
`parse_sample`); a field the chip does not report is None. Zeus's `AppleSilicon` wraps it
with `begin_window(key)` / `end_window(key)` (IOReportCreateSamplesDelta between two
samples), which this source uses as is. The SoC's whole energy (CPU, GPU, GPU SRAM, ANE,
DRAM) is the scope on a unified-memory chip: every rail serves the computation. Apple
states no power limit for its SoCs, so only the above-idle half of the self-check applies.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from bench.energy.base import EnergyUnavailable, describe

# The AppleEnergyMetrics totals (not the per-core/per-cluster parts of cpu_total_mj), in the
# order a row lists them.
TOTALS = ("cpu_total_mj", "gpu_mj", "gpu_sram_mj", "ane_mj", "dram_mj")


def _rail(field: str) -> str:
    return "soc." + field.removesuffix("_mj")


def _soc() -> Any:
    if sys.platform != "darwin" or platform.machine() != "arm64":
        raise EnergyUnavailable(f"IOReport: not Apple Silicon ({sys.platform} {platform.machine()})")
    try:
        from zeus.device.soc import apple
    except ImportError as exc:
        raise EnergyUnavailable(f"IOReport: zeus is not installed ({describe(exc)}); pip install 'metalbench[energy]'") from None
    if not apple.zeus_apple_available:
        raise EnergyUnavailable("IOReport: zeus-apple-silicon is not installed; pip install 'metalbench[energy]'")
    try:
        return apple.AppleSilicon()
    except apple.ZeusAppleInitError as exc:  # "Failed to create IOReport subscription." and kin
        raise EnergyUnavailable(f"IOReport: {describe(exc)}") from None


class AppleSource:
    """The SoC's energy rails from one IOReport subscription."""

    def __init__(self, soc: Any = None) -> None:
        self.soc = soc if soc is not None else _soc()
        try:
            available = self.soc.get_available_metrics()
        except Exception as exc:
            raise EnergyUnavailable(f"IOReport: {describe(exc)}") from None
        self.fields = tuple(f for f in TOTALS if f in available)
        if not self.fields:
            raise EnergyUnavailable(f"IOReport: no energy channel this source knows ({', '.join(sorted(available)) or 'none'})")
        self.name = "ioreport energy model (zeus-apple-silicon)"
        self.scope = tuple(_rail(f) for f in self.fields)

    def begin(self, key: str) -> None:
        self.soc.begin_window(key, restart=True)  # a window left open by a failed case is replaced

    def end(self, key: str) -> dict[str, float]:
        measured = self.soc.end_window(key)  # AppleSiliconMeasurement, integer mJ, None where unread
        rails = {_rail(f): getattr(measured, f) / 1e3 for f in self.fields if getattr(measured, f) is not None}
        missing = [f for f in self.fields if getattr(measured, f) is None]
        if missing:
            raise EnergyUnavailable(f"IOReport: {', '.join(missing)} unread in this window")
        return rails

    def limit_w(self) -> float | None:
        return None
