"""The roofs of the roofline chart, per device — and where each number came from.

The numbers are not decided here. `bench.roofline` owns the datasheet table (vendors'
dense peaks, with sources) and stamps each row with `peak_tflops`/`peak_gbps`/
`peak_source`; it also computes the suite's own calibration ceilings (best `matmul`
FLOP/s per dtype, best `stream` GB/s). This module only picks, per roof, in order:

1. the datasheet value carried by the rows (GPU backends only: for a CPU the row's peak
   is a deliberately generous plausibility bound, not a roof anyone reaches);
2. the calibration ceiling measured on that machine;
3. the best value any case of this report reached ("best measured", a lower bound).

and labels each roof with its source, so the reader knows which kind of roof it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.roofline import measured_ceilings

T = 1e12
G = 1e9
BEST_MEASURED = "best measured in this report"


@dataclass(frozen=True)
class Peak:
    value: float  # FLOP/s or bytes/s
    source: str

    @property
    def measured(self) -> bool:
        return self.source.startswith(("measured", BEST_MEASURED))


@dataclass(frozen=True)
class Roofs:
    """The roofs of one (machine, backend): bandwidth, and compute per dtype in its rows."""

    device: str
    bandwidth: Peak | None
    compute: dict[str, Peak]

    def describe(self) -> str:
        parts = []
        if self.bandwidth:
            parts.append(f"bandwidth {self.bandwidth.value / G:.4g} GB/s ({self.bandwidth.source})")
        parts += [f"{dtype} {p.value / T:.4g} TFLOP/s ({p.source})" for dtype, p in self.compute.items()]
        return f"{self.device}: " + "; ".join(parts)


def _positive(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


def _first(values: pd.Series, scale: float) -> float | None:
    found = next((v for v in map(_positive, values) if v is not None), None)
    return found * scale if found is not None else None


def _best(values: pd.Series, scale: float = 1.0) -> float | None:
    found = [v for v in map(_positive, values) if v is not None]
    return max(found) * scale if found else None


def _pick(datasheet: float | None, source: str, calibrated: float | None, calibration: str,
          best: float | None) -> Peak | None:
    """The first known of datasheet, calibration, best measured (all in base units)."""
    if datasheet is not None:
        return Peak(datasheet, source)
    if calibrated is not None:
        return Peak(calibrated, f"measured: {calibration} calibration")
    return Peak(best, BEST_MEASURED) if best is not None else None


def roofs_for(rows: pd.DataFrame) -> Roofs:
    """Roofs for the rows of one (machine, backend)."""
    backend = str(rows["backend"].iloc[0])
    sources = rows["peak_source"].dropna()
    source = str(sources.iloc[0]) if backend != "cpu" and len(sources) else ""
    ceilings = measured_ceilings(rows)
    names = rows["device_name"].dropna().unique()
    device = f"{names[0] if len(names) else backend} ({backend})"
    bandwidth = _pick(
        _first(rows["peak_gbps"], G) if source else None, source,
        _best(ceilings["ceiling_gbps"], G), "stream",
        _best(rows["bytes_moved"].astype(float) / rows["median_s"].astype(float)),
    )
    compute: dict[str, Peak] = {}
    for dtype, part in rows.groupby("dtype", sort=True):
        peak = _pick(
            _first(part["peak_tflops"], T) if source else None, source,
            _best(ceilings[ceilings["dtype"] == dtype]["ceiling_tflops"], T), "matmul",
            _best(part["flop_per_s"].astype(float)),
        )
        if peak is not None:
            compute[str(dtype)] = peak
    return Roofs(device, bandwidth, compute)
