"""Results files → the one tidy table every chart and table of the report reads.

Loading is strict for files the user named and lenient for files found inside a folder:
`make bench` renders `results/`, which can hold a run from an older schema or a file
cut short by a crash, and one stale file must not cost the user the report of every
other run. Skipped files are reported as warnings, never silently.

`prepare` adds the derived columns once (ranking within a mode, case labels, the columns
other parts of the suite add over time read null-safe, arithmetic intensity) so nothing
downstream recomputes or re-decides them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from bench.results import ResultsError, load_results
from bench.report.labels import case_label, params_text
from bench.report.runs import per_case
from bench.fmt import finite
from bench.summary import COMPARABLE, rank

Warn = Callable[[str], None]


def load(paths: Iterable[Path | str], warn: Warn) -> pd.DataFrame:
    """Every readable results file under `paths`, as every reader loads them
    (bench.results.load_results: each file once, bad files in a folder skipped with a warning,
    each process counted once); `source` names the file. A report needs at least one row."""
    paths = list(paths)
    df = load_results(paths, warn)
    if df.empty:
        raise ResultsError(f"no readable results rows in {', '.join(map(str, paths))}")
    return df


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


# Columns other parts of the suite add over time. Older files lack them; their names were
# not final when the report learnt to read them, so each is looked up under every name
# it may carry (as a column, then as a `metrics` key), first found wins.
DEVICE_TIME = ("device_median_s", "device_time_median_s", "device_time_s", "device_s")
DEVICE_CI_LOW = ("device_ci_low_s", "device_time_ci_low_s")
DEVICE_CI_HIGH = ("device_ci_high_s", "device_time_ci_high_s")
DEVICE_SAMPLES = ("device_samples_s", "device_time_samples_s")
QUEUE_CURVE = ("queue_curve_pairs", "queued_curve", "queue_curve", "queued_k_curve", "queue_depth_curve", "queued_sweep", "queue_sweep")
CHECKS = ("barrier_check", "placement_check")
MODES = ("eager", "compiled")


def lookup(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The first present, non-null value under any of `names`, in the row then its metrics."""
    for name in names:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    metrics = row.get("metrics_dict") or {}
    return next((metrics[n] for n in names if metrics.get(n) is not None), None)


def number(value: Any) -> float:
    """A finite float, or NaN for anything else (null, text, inf)."""
    return float(value) if finite(value) else math.nan


def queue_curve(value: Any) -> list[tuple[float, float]]:
    """A queued (k, per-call seconds) curve from any shape it may be stored in: JSON text, a
    list of pairs or of {"k", "per_call_s"} dicts, a {k: seconds} dict, or parallel lists."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    pairs: list[Any] = []
    if isinstance(value, dict):
        ks = value.get("k")
        ts = next((value[n] for n in ("per_call_s", "seconds", "s", "time_s") if n in value), None)
        if isinstance(ks, list) and isinstance(ts, list):
            pairs = list(zip(ks, ts))
        else:
            pairs = list(value.items())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                pairs.append((item.get("k"), next((item[n] for n in ("per_call_s", "seconds", "s", "time_s") if n in item), None)))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append(tuple(item))
    out = []
    for k, t in pairs:
        try:
            k, t = float(k), float(t)
        except (TypeError, ValueError):
            continue
        if math.isfinite(k) and math.isfinite(t) and k > 0 and t > 0:
            out.append((k, t))
    return sorted(out)


def check_text(value: Any) -> str:
    """A self-check outcome as text: True → "ok", False → "failed", text as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "ok" if value else "failed"
    return str(value)


def with_optional_columns(df: pd.DataFrame) -> pd.DataFrame:
    """`mode`, device time, the queued curve and the self-checks, null-safe for old files."""
    out = df.copy()
    mode = out["mode"] if "mode" in out else pd.Series(None, index=out.index, dtype=object)
    out["mode"] = mode.map(lambda v: str(v) if isinstance(v, str) and v else "eager")
    if "queue_curve_k" in out and "queue_curve_s" in out:  # the sweep as stored by bench.worker: parallel lists
        out["queue_curve_pairs"] = [
            None if k is None or s is None else {"k": list(k), "per_call_s": list(s)}
            for k, s in zip(out["queue_curve_k"], out["queue_curve_s"])
        ]
    names = {n for group in (DEVICE_TIME, DEVICE_CI_LOW, DEVICE_CI_HIGH, DEVICE_SAMPLES, QUEUE_CURVE) for n in group}
    present = [c for c in out.columns if c in names] + ["metrics_dict"]
    records = out[present].to_dict("records")  # plain dicts: pandas row access is slow
    out["device_median_s"] = [number(lookup(r, DEVICE_TIME)) for r in records]
    out["device_ci_low_s"] = [number(lookup(r, DEVICE_CI_LOW)) for r in records]
    out["device_ci_high_s"] = [number(lookup(r, DEVICE_CI_HIGH)) for r in records]
    out["device_samples"] = [lookup(r, DEVICE_SAMPLES) for r in records]
    out["queue_curve"] = [queue_curve(lookup(r, QUEUE_CURVE)) for r in records]
    for name in CHECKS:
        out[name] = out[name].map(check_text) if name in out else ""
    return out


def rank_within_run(df: pd.DataFrame) -> pd.DataFrame:
    """`bench.summary.rank`, applied per run and execution mode: a framework is ranked only
    against the other frameworks of the same run (never against its own other runs), and a
    compiled path never against an eager one (HOUSE: the mode is a dimension like precision)."""
    return rank(df, by=("run_id", *COMPARABLE))  # one ranking, not one per run (2,000 runs: seconds each)


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Ranked rows with the derived columns the report uses.

    A case measured by several processes of one run is first folded into one row
    (`bench.report.runs.per_case`). Ranking is `bench.summary.rank`, the same like-with-like
    rule as `bench show`, within one run and one execution mode: a row with an empty
    `not_ranked` may be compared with others of its (run, machine, workload, params, dtype,
    timing, mode, conditions) group; any other row is shown with its reason, never compared.
    """
    out = df.reset_index(drop=True)
    out["metrics_dict"] = out["metrics"].map(parse_metrics)
    out = rank_within_run(per_case(with_optional_columns(out)))
    out["case"] = out["params"].map(case_label)
    out["params_text"] = out["params"].map(params_text)
    flops = out["flops"].astype(float)
    out["flop_per_s"] = flops / out["median_s"].astype(float)
    out["intensity"] = flops / out["bytes_moved"].astype(float).where(out["bytes_moved"] > 0)
    return out


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the like-with-like rule allows to be drawn next to each other."""
    return df[df["not_ranked"] == ""]
