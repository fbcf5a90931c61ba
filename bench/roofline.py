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

from bench import apple_peaks
from bench.fmt import finite


@dataclass(frozen=True)
class Peak:
    tflops: Mapping[str, float]  # dense peak per dtype
    gbps: float
    source: str


def _nvidia(fp32: float, tf32: float, half: float, gbps: float, source: str) -> Peak:
    return Peak({"fp32": fp32, "tf32": tf32, "fp16": half, "bf16": half}, gbps, source)


def apple_peak(name: str | None, gpu_cores: int | None) -> Peak | None:
    """An Apple GPU's peaks from bench.apple_peaks (M1–M5 by chip and GPU core count, cited there)."""
    found = apple_peaks.find(name, gpu_cores)
    if found is None:
        return None
    part, note = found
    return Peak({d: part.tflops(d) for d in ("fp32", "tf32", "fp16", "bf16")}, part.gbps,
                part.source() + (f" ({note})" if note else ""))


# Dense (non-sparse) peaks. NVIDIA: H100/H200 datasheets (SXM). Apple: bench.apple_peaks.
KNOWN: list[tuple[str, Peak]] = [
    (r"H200", _nvidia(67.0, 494.7, 989.4, 4800.0, "NVIDIA H200 SXM datasheet (dense)")),
    (r"H100.*PCIe", _nvidia(51.2, 378.0, 756.0, 2000.0, "NVIDIA H100 PCIe datasheet (dense)")),
    (r"H100", _nvidia(66.9, 494.7, 989.4, 3350.0, "NVIDIA H100 SXM datasheet (dense)")),
    (r"A100", _nvidia(19.5, 156.0, 312.0, 2039.0, "NVIDIA A100 80GB SXM datasheet (dense)")),
]

PLAUSIBILITY_MARGIN = 1.25  # datasheet peaks are rounded and boost clocks vary; 25% over is not noise


def cpu_peak(cpu_count: int) -> Peak:
    """A deliberately generous CPU ceiling: 5 GHz x 1024 FLOP/cycle (AMX-class) per core and
    1 TB/s of cache bandwidth per core. Real CPUs reach a fraction; only a result that
    skipped the work can pass it."""
    per_core = 5e9 * 1024 / 1e12
    return Peak({d: per_core * cpu_count for d in ("fp32", "tf32", "fp16", "bf16")}, 1000.0 * cpu_count,
                "generous CPU bound (5 GHz x 1024 FLOP/cycle/core, 1 TB/s/core)")


def known_peak(device_name: str | None, backend: str | None, cpu_count: int | None,
               chip: str | None = None, gpu_cores: int | None = None) -> Peak | None:
    """The row's ceilings: CPU bound, Apple GPU by chip and GPU core count (a Metal row's
    `chip` names the GPU; its device name may be the API's, "Metal"), else the NVIDIA table."""
    if backend == "cpu":
        return cpu_peak(max(int(cpu_count or 1), 1))
    if backend == "metal":
        return apple_peak(chip if apple_peaks.chip_of(chip) else device_name, gpu_cores)
    for pattern, peak in KNOWN:
        if device_name and re.search(pattern, device_name):
            return peak
    return None


def plausibility(row: Mapping[str, Any]) -> dict[str, Any]:
    """Columns `plausible`, `peak_tflops`, `peak_gbps`, `peak_source` for one finished row."""
    cores = row.get("gpu_cores")
    peak = known_peak(row.get("device_name"), row.get("backend"), row.get("cpu_count"), row.get("chip"),
                      int(cores) if finite(cores) else None)
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

