"""Results files → the one tidy table every chart and table of the report reads.

Loading is strict for files the user named and lenient for files found inside a folder:
`make bench` renders `results/`, which can hold a run from an older schema or a file
cut short by a crash, and one stale file must not cost the user the report of every
other run. Skipped files are reported as warnings, never silently.

`prepare` adds the derived columns once (ranking, case labels, throughput with its
interval, arithmetic intensity) so no chart recomputes or re-decides them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from bench.results import ResultsError, read_results
from bench.summary import describe_params, rank

Warn = Callable[[str], None]


def load(paths: Iterable[Path | str], warn: Warn) -> pd.DataFrame:
    """Every readable results file under `paths`, concatenated; `source` names the file."""
    paths = [Path(p) for p in paths]
    frames: list[pd.DataFrame] = []
    skipped: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(q for q in path.rglob("*.parquet") if not q.name.startswith("."))
            for file in found:
                try:
                    frames.append(read_results(file).assign(source=str(file)))
                except ResultsError as exc:
                    skipped.append(f"skipped {exc}")
        elif path.exists():
            frames.append(read_results(path).assign(source=str(path)))
        else:
            raise ResultsError(f"{path}: no such file or directory")
    frames = [f for f in frames if len(f)]
    if not frames:  # one line: the error (with the first skip's reason), no warnings before it
        why = f" ({skipped[0]})" if skipped else ""
        raise ResultsError(f"no readable results rows in {', '.join(map(str, paths))}{why}")
    for message in skipped:
        warn(message)
    return pd.concat(frames, ignore_index=True)


def parse_metrics(text: Any) -> dict[str, Any]:
    """The `metrics` JSON column as a dict; absent or malformed metrics are just empty."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value))


def _positive(value: Any) -> float:
    """The value as a float when it is a finite positive number, else NaN."""
    return float(value) if _finite(value) and float(value) > 0 else math.nan


# (unit label, how to get the figure from a row). Tokens/s wins when a workload reports
# it (a model's users think in tokens), then FLOP/s, then bytes for memory-bound work.
THROUGHPUTS: tuple[tuple[str, Callable[[pd.Series], float]], ...] = (
    ("tokens/s", lambda r: _positive(r["metrics_dict"].get("tokens_per_s"))),
    ("TFLOP/s", lambda r: _positive(r["tflops"])),
    ("GB/s", lambda r: _positive(r["gbps"])),
)


# A workload whose best throughput is below 1 in its unit reads better one prefix down
# (a CPU's 0.0042 TFLOP/s is 4.2 GFLOP/s).
SMALLER_UNIT = {"TFLOP/s": ("GFLOP/s", 1e3), "GB/s": ("MB/s", 1e3)}


def throughput_unit(rows: pd.DataFrame) -> str:
    """The first throughput every timed row of a workload has (one unit per workload)."""
    timed = rows[rows["median_s"].map(_finite)]
    for unit, get in THROUGHPUTS:
        if len(timed) and timed.apply(get, axis=1).map(math.isfinite).all():
            return unit
    return THROUGHPUTS[1][0]


def _with_throughput(df: pd.DataFrame) -> pd.DataFrame:
    """Adds throughput, its 95% interval and unit, per workload.

    Throughput is work / time, so the interval of the median time maps to an interval of
    throughput by the same ratio: low = value·median/ci_high, high = value·median/ci_low.
    """
    getters = dict(THROUGHPUTS)
    parts = []
    for _, rows in df.groupby("workload", sort=False):
        unit = throughput_unit(rows)
        value = rows.apply(getters[unit], axis=1) if len(rows) else pd.Series(dtype=float)
        if unit in SMALLER_UNIT and value.max() < 1:
            unit, scale = SMALLER_UNIT[unit]
            value = value * scale
        median = rows["median_s"].astype(float)
        parts.append(
            rows.assign(
                throughput=value,
                throughput_low=value * median / rows["ci_high_s"].astype(float),
                throughput_high=value * median / rows["ci_low_s"].astype(float),
                throughput_unit=unit,
            )
        )
    return pd.concat(parts).sort_index()


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Ranked rows with the derived columns the report uses.

    Ranking is `bench.summary.rank`, the same like-with-like rule as `bench show`: a row
    with an empty `not_ranked` may be compared with others of its (machine, workload,
    params, dtype, timing) group; any other row is shown with its reason, never compared.
    """
    out = rank(df.reset_index(drop=True))
    out["case"] = out["params"].map(describe_params)
    out["metrics_dict"] = out["metrics"].map(parse_metrics)
    out = _with_throughput(out)
    flops = out["flops"].astype(float)
    out["flop_per_s"] = flops / out["median_s"].astype(float)
    out["intensity"] = flops / out["bytes_moved"].astype(float).where(out["bytes_moved"] > 0)
    return out


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the like-with-like rule allows to be drawn next to each other."""
    return df[df["not_ranked"] == ""]


def case_order(df: pd.DataFrame) -> list[str]:
    """Case labels from smallest to largest amount of work, so scaling reads left to right."""
    order = df.sort_values(["flops", "bytes_moved", "case"], na_position="last").drop_duplicates("case")
    return list(order["case"])
