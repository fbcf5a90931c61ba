"""Each workload in its users' units: which figures a workload is read in, and their values.

An LLM user reads tokens/s (prompt processing, generation, time to first token), a
training user tokens/s and samples/s, a quantized-matmul user the weight bandwidth, and
everyone else TFLOP/s or GB/s. The measures are chosen from what the rows carry (the
keys of `metrics`), not from the workload's name, so a new workload that reports
`tokens_per_s` is shown in tokens/s without a change here.

A figure derived from the timed call (work / median time) gets the 95% interval of the
median by the same ratio; a figure the adapter measured separately (pp, tg, TTFT) has no
interval in the row, so none is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Measure:
    key: str  # the metrics key, or "tflops"/"gbps" for the row's own columns
    name: str  # what it is, e.g. "generation"
    unit: str
    higher_is_better: bool = True
    from_median: bool = True  # derived from the timed call's median: the CI applies
    scale: float = 1.0  # multiplies the stored value into `unit`
    label_key: str = ""  # a metrics key whose value names it better ("tg128")


# Metrics a workload may report, in the order users look for them.
METRIC_MEASURES = (
    Measure("tg_tokens_per_s", "generation", "tokens/s", from_median=False, label_key="tg_label"),
    Measure("pp_tokens_per_s", "prompt processing", "tokens/s", from_median=False, label_key="pp_label"),
    Measure("ttft_s", "time to first token", "ms", higher_is_better=False, from_median=False, scale=1e3),
    Measure("decode_tokens_per_s", "decode step", "tokens/s"),
    Measure("tokens_per_s", "training", "tokens/s"),
    Measure("samples_per_s", "training", "samples/s"),
    Measure("weight_gbps", "weights read", "GB/s"),
)
TFLOPS = Measure("tflops", "compute", "TFLOP/s")
GBPS = Measure("gbps", "memory traffic", "GB/s")
# A figure below 1 in its unit reads better one prefix down (a CPU's 0.0042 TFLOP/s is 4.2 GFLOP/s).
SMALLER_UNIT = {"TFLOP/s": ("GFLOP/s", 1e3), "GB/s": ("MB/s", 1e3)}


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def raw_value(row: pd.Series, m: Measure) -> float:
    value = row["metrics_dict"].get(m.key) if m in METRIC_MEASURES else row.get(m.key)
    out = _number(value) * m.scale
    return out if out > 0 else math.nan


def measures_for(rows: pd.DataFrame) -> list[Measure]:
    """The measures of one workload's rows: the metrics it reports, else TFLOP/s and GB/s
    (GB/s first when the work is memory-bound: under one FLOP per byte moved)."""
    ok = rows[rows["status"] == "ok"]
    found = [m for m in METRIC_MEASURES if ok.apply(lambda r: math.isfinite(raw_value(r, m)), axis=1).any()] if len(ok) else []
    if found:
        return found
    intensity = (ok["flops"].astype(float) / ok["bytes_moved"].astype(float)).median() if len(ok) else math.nan
    return [GBPS, TFLOPS] if math.isfinite(intensity) and intensity < 1 else [TFLOPS, GBPS]


def measure_values(rows: pd.DataFrame, m: Measure) -> tuple[Measure, pd.DataFrame]:
    """(measure in its display unit, frame of value/low/high per row)."""
    value = rows.apply(lambda r: raw_value(r, m), axis=1) if len(rows) else pd.Series(dtype=float)
    unit, scale = m.unit, 1.0
    if m.unit in SMALLER_UNIT and value.max() < 1:
        unit, scale = SMALLER_UNIT[m.unit]
    value = value * scale
    if m.from_median:
        median = rows["median_s"].astype(float)
        # throughput = work / time: the interval of the median time maps by the same ratio
        low = value * median / rows["ci_high_s"].astype(float)
        high = value * median / rows["ci_low_s"].astype(float)
    else:
        low = high = pd.Series(math.nan, index=rows.index)
    label = m.name
    if m.label_key:
        names = rows["metrics_dict"].map(lambda d: d.get(m.label_key)).dropna().unique()
        if len(names) == 1:
            label = f"{m.name} ({names[0]})"
    shown = Measure(m.key, label, unit, m.higher_is_better, m.from_median, m.scale * scale, m.label_key)
    return shown, pd.DataFrame({"value": value, "low": low, "high": high})
