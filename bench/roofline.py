"""Ceilings: how fast a device can possibly go, and how close each case came.

Two sources, always named in the data:
* `datasheet` — a small table of vendors' published dense peaks for known chips. It is
  also the plausibility guard: a result faster than the device's peak (with a margin)
  means the measurement never waited for the work (the missing-barrier bug that made
  published MPS/CUDA tables 31-45x too fast) and the row is marked implausible.
* `measured` — the run's own calibration: the best matmul FLOP/s per dtype and the best
  `stream` GB/s on that machine (`measured_ceilings`), which the report draws its roofs from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from bench.fmt import finite


@dataclass(frozen=True)
class Peak:
    tflops: Mapping[str, float]  # dense peak per dtype
    gbps: float
    source: str


def _nvidia(fp32: float, tf32: float, half: float, gbps: float, source: str) -> Peak:
    return Peak({"fp32": fp32, "tf32": tf32, "fp16": half, "bf16": half}, gbps, source)


def _apple(fp32: float, gbps: float, name: str) -> Peak:
    # Apple quotes one GPU FLOP/s figure (fp32); fp16/bf16 run at the same ALU rate on M1-M4.
    return Peak({"fp32": fp32, "tf32": fp32, "fp16": fp32, "bf16": fp32}, gbps, f"Apple {name} published GPU TFLOPS and memory bandwidth")


# Dense (non-sparse) peaks. NVIDIA: H100/H200 datasheets (SXM). Apple: press releases.
KNOWN: list[tuple[str, Peak]] = [
    (r"H200", _nvidia(67.0, 494.7, 989.4, 4800.0, "NVIDIA H200 SXM datasheet (dense)")),
    (r"H100.*PCIe", _nvidia(51.2, 378.0, 756.0, 2000.0, "NVIDIA H100 PCIe datasheet (dense)")),
    (r"H100", _nvidia(66.9, 494.7, 989.4, 3350.0, "NVIDIA H100 SXM datasheet (dense)")),
    (r"A100", _nvidia(19.5, 156.0, 312.0, 2039.0, "NVIDIA A100 80GB SXM datasheet (dense)")),
    (r"\bM1 Ultra\b", _apple(21.0, 800.0, "M1 Ultra")),
    (r"\bM1 Max\b", _apple(10.4, 400.0, "M1 Max")),
    (r"\bM1 Pro\b", _apple(5.2, 200.0, "M1 Pro")),
    (r"\bM1\b", _apple(2.6, 68.25, "M1")),
    (r"\bM2 Ultra\b", _apple(27.2, 800.0, "M2 Ultra")),
    (r"\bM2 Max\b", _apple(13.6, 400.0, "M2 Max")),
    (r"\bM2 Pro\b", _apple(6.8, 200.0, "M2 Pro")),
    (r"\bM2\b", _apple(3.6, 100.0, "M2")),
]

PLAUSIBILITY_MARGIN = 1.25  # datasheet peaks are rounded and boost clocks vary; 25% over is not noise


def cpu_peak(cpu_count: int) -> Peak:
    """A deliberately generous CPU ceiling: 5 GHz x 1024 FLOP/cycle (AMX-class) per core and
    1 TB/s of cache bandwidth per core. Real CPUs reach a fraction; only a result that
    skipped the work can pass it."""
    per_core = 5e9 * 1024 / 1e12
    return Peak({d: per_core * cpu_count for d in ("fp32", "tf32", "fp16", "bf16")}, 1000.0 * cpu_count,
                "generous CPU bound (5 GHz x 1024 FLOP/cycle/core, 1 TB/s/core)")


def known_peak(device_name: str | None, backend: str | None, cpu_count: int | None) -> Peak | None:
    if backend == "cpu":
        return cpu_peak(max(int(cpu_count or 1), 1))
    for pattern, peak in KNOWN:
        if device_name and re.search(pattern, device_name):
            return peak
    return None


def plausibility(row: Mapping[str, Any]) -> dict[str, Any]:
    """Columns `plausible`, `peak_tflops`, `peak_gbps`, `peak_source` for one finished row."""
    peak = known_peak(row.get("device_name"), row.get("backend"), row.get("cpu_count"))
    if peak is None or row.get("status") != "ok":
        return {"plausible": None, "peak_tflops": None, "peak_gbps": None, "peak_source": peak.source if peak else None}
    peak_tflops = peak.tflops.get(str(row.get("dtype")))
    too_fast = []
    tflops, gbps = row.get("tflops"), row.get("gbps")
    if peak_tflops and finite(tflops) and tflops > PLAUSIBILITY_MARGIN * peak_tflops:
        too_fast.append(f"{tflops:.3g} TFLOP/s exceeds the {peak_tflops:.3g} peak")
    if finite(gbps) and gbps > PLAUSIBILITY_MARGIN * peak.gbps:
        too_fast.append(f"{gbps:.3g} GB/s exceeds the {peak.gbps:.3g} peak")
    out = {"plausible": not too_fast, "peak_tflops": peak_tflops, "peak_gbps": peak.gbps, "peak_source": peak.source}
    if too_fast:
        out["plausibility_note"] = "implausible (did the barrier wait?): " + "; ".join(too_fast)
    return out


def measured_ceilings(df: pd.DataFrame) -> pd.DataFrame:
    """Per machine and backend: best matmul TFLOP/s per dtype and best stream GB/s."""
    ok = df[(df["status"] == "ok") & df["correct"].fillna(False).astype(bool) & (df["plausible"] != False)]  # noqa: E712
    flops = ok[ok["workload"] == "matmul"].groupby(["machine", "backend", "dtype"])["tflops"].max().rename("ceiling_tflops")
    bw = ok[ok["workload"] == "stream"].groupby(["machine", "backend"])["gbps"].max().rename("ceiling_gbps")
    return flops.reset_index().merge(bw.reset_index(), on=["machine", "backend"], how="outer")

