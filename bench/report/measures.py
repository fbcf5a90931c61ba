"""Each workload in its users' units: which figures a workload is read in, and their values.

An LLM user reads tokens/s (prompt processing, generation, time to first token), a
training user tokens/s and samples/s, a quantized-matmul user the weight bandwidth, and
everyone else TFLOP/s or GB/s. The measures are chosen from what the rows carry (the
keys of `metrics`), not from the workload's name, so a new workload that reports
`tokens_per_s` is shown in tokens/s without a change here.

A figure derived from the timed call (work / median time) gets the 95% interval of the
median by the same ratio; a figure the adapter measured separately (pp, tg, TTFT) once per
process has an interval only when several processes measured it (between processes,
`bench.report.runs.per_case`); with one, none is drawn.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping


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


def _div(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) else math.nan


def raw_value(row: Mapping[str, Any], m: Measure) -> float:
    value = (row["metrics_dict"] or {}).get(m.key) if m in METRIC_MEASURES else row.get(m.key)
    out = _number(value) * m.scale
    return out if out > 0 else math.nan


def measures_for(rows: list[Mapping[str, Any]]) -> list[Measure]:
    """The measures of one workload's rows: the metrics it reports, else TFLOP/s and GB/s
    (GB/s first when the work is memory-bound: under one FLOP per byte moved)."""
    ok = [r for r in rows if r["status"] == "ok"]
    found = [m for m in METRIC_MEASURES if any(math.isfinite(raw_value(r, m)) for r in ok)]
    if found:
        return found
    intensities = [_number(r["flops"]) / _number(r["bytes_moved"]) for r in ok if _number(r["bytes_moved"]) > 0]
    intensities = [x for x in intensities if math.isfinite(x)]
    return [GBPS, TFLOPS] if intensities and statistics.median(intensities) < 1 else [TFLOPS, GBPS]


def measure_values(rows: list[Mapping[str, Any]], m: Measure) -> tuple[Measure, list[tuple[float, float, float]]]:
    """(measure in its display unit, (value, low, high) per row)."""
    raw = [raw_value(r, m) for r in rows]
    unit, scale = m.unit, 1.0
    finite = [v for v in raw if math.isfinite(v)]
    if m.unit in SMALLER_UNIT and finite and max(finite) < 1:
        unit, scale = SMALLER_UNIT[m.unit]
    out = []
    for r, v in zip(rows, raw):
        v *= scale
        if m.from_median:
            # throughput = work / time: the interval of the median time maps by the same ratio
            median = _number(r["median_s"])
            out.append((v, _div(v * median, _number(r["ci_high_s"])), _div(v * median, _number(r["ci_low_s"]))))
        else:
            # measured by the adapter once per process: an interval only between processes
            # (bench.report.runs.per_case stores it as `<key>_ci`)
            ci = (r["metrics_dict"] or {}).get(f"{m.key}_ci") if m in METRIC_MEASURES else None
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and math.isfinite(v):
                low, high = sorted(_number(x) * m.scale * scale for x in ci)
                out.append((v, low, high))
            else:
                out.append((v, math.nan, math.nan))
    label = m.name
    if m.label_key:
        names = {(r["metrics_dict"] or {}).get(m.label_key) for r in rows} - {None}
        if len(names) == 1:
            label = f"{m.name} ({names.pop()})"
    return Measure(m.key, label, unit, m.higher_is_better, m.from_median, m.scale * scale, m.label_key), out
