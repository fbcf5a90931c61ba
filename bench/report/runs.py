"""Runs and processes as dimensions of the report's data, never as extra bars.

A results folder usually holds several runs of one machine (the committed baselines hold
three of the H200; a user re-runs the suite after an upgrade). A figure on the page is
always *one run's* figure for one case: a bar, a matrix cell and a ratio never mix runs,
and nothing is summed across them. By default each machine is shown at its newest run;
the page's run selector shows any other (`runs_view` lists them with their dates).

Inside one run a case may have been measured by several fresh worker processes (the
process is the unit: HOUSE.md). `per_case` folds them into the case's figure: the median
of the per-process figures with their between-process interval. It is the one place that
does so; when `bench.processes` (the process-unit module) offers the aggregation, this
module defers to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.results import KEY_COLUMNS
from bench.summary import with_conditions

try:  # the process-unit helpers, once they exist; the column alone is enough until then
    from bench.processes import PROCESS_KEY  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on which modules have landed
    PROCESS_KEY = ("run_id", "framework", "process")

PROCESS = "process"  # 0-based index of a framework's fresh worker process within its run; absent = 0
# One case of one run: the rows of its processes fold into one figure.
CASE_OF_RUN = ("run_id", *KEY_COLUMNS, "timing", "conditions")
TIMING_PREFIXES = ("", "latency_", "queued_", "device_")
# Figures the adapter measured outside the timed call (metrics keys): per process, once.
METRIC_FIGURES = ("tg_tokens_per_s", "pp_tokens_per_s", "ttft_s", "decode_tokens_per_s", "tokens_per_s",
                  "samples_per_s", "weight_gbps")
CONFIDENCE = 0.95


def process_index(df: pd.DataFrame) -> pd.Series:
    """Each row's process within its run: the `process` column, or 0 for files without it."""
    if PROCESS not in df:
        return pd.Series(0, index=df.index, dtype="int64")
    return pd.to_numeric(df[PROCESS], errors="coerce").fillna(0).astype("int64")


def between_process_interval(figures: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median, low, high) of per-process figures: the median is the case's figure; the interval
    is Student's t on their logs (a process's speed state multiplies its time), widened to
    contain the median. One process: no interval (NaN), never a falsely tight one."""
    xs = np.asarray([x for x in figures if x is not None and math.isfinite(x) and x > 0], dtype=float)
    if xs.size == 0:
        return math.nan, math.nan, math.nan
    median = float(np.median(xs))
    if xs.size < 2:
        return median, math.nan, math.nan
    logs = np.log(xs)
    half = float(sps.t.ppf(0.5 + confidence / 2, xs.size - 1)) * float(np.std(logs, ddof=1)) / math.sqrt(xs.size)
    centre = float(np.mean(logs))
    return median, min(median, math.exp(centre - half)), max(median, math.exp(centre + half))


def _concat(values: list[Any]) -> Any:
    lists = [list(v) for v in values if v is not None and not isinstance(v, float) and len(v)]
    return [x for part in lists for x in part] if lists else values[0]


def _numbers(records: list[dict[str, Any]], column: str) -> list[float]:
    out = []
    for r in records:
        try:
            v = float(r.get(column))
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            out.append(v)
    return out


def _fold(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's processes → its row: ok only if every process was ok (a failed process is
    the case's outcome, with its reason); timings are the median of the per-process figures
    with the between-process interval; samples are pooled for the distribution plots."""
    if len(records) == 1:  # one process: its own (within-process) interval is all there is
        return {**records[0], "n_processes": 1}
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        out = dict(failed[0])
        if len(records) > 1:
            out["reason"] = f"{len(failed)} of {len(records)} processes {failed[0]['status']}: {failed[0].get('reason') or ''}".rstrip(": ")
        out["n_processes"] = len(records)
        return out
    out = dict(records[0])
    for prefix in TIMING_PREFIXES:
        median = f"{prefix}median_s"
        if median not in out:
            continue
        m, lo, hi = between_process_interval(_numbers(records, median))
        out[median], out[f"{prefix}ci_low_s"], out[f"{prefix}ci_high_s"] = m, lo, hi
    for column in [c for c in out if c.endswith("samples_s") or c == "device_samples"]:
        out[column] = _concat([r.get(column) for r in records])
    for column in ("first_call_s", "dispatch_overhead_s", "peak_device_bytes", "peak_rss_bytes", "n_samples"):
        values = _numbers(records, column)
        if values:
            out[column] = float(np.median(values))
    metrics = dict(out.get("metrics_dict") or {})
    for key in METRIC_FIGURES:
        values = [float(r["metrics_dict"][key]) for r in records
                  if isinstance(r.get("metrics_dict"), dict) and isinstance(r["metrics_dict"].get(key), (int, float))]
        if values:
            m, lo, hi = between_process_interval(values)
            metrics[key] = m
            if math.isfinite(lo):
                metrics[f"{key}_ci"] = [lo, hi]
    out["metrics_dict"] = metrics
    out["n_processes"] = len(records)
    return out


def per_case(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and case (CASE_OF_RUN): a case measured by several processes of one
    run becomes one row, its figure the median of theirs with the between-process interval
    (`n_processes` says how many). Rows of different runs are never merged."""
    out = with_conditions(df).reset_index(drop=True)
    out[PROCESS] = process_index(out)
    keys = [c for c in CASE_OF_RUN if c in out]
    key_frame = out[keys].astype(object).where(out[keys].notna(), "")
    case_ids = key_frame.groupby(keys, sort=False, dropna=False).ngroup()
    if case_ids.nunique() == len(out):
        return out.assign(n_processes=1)
    records = out.sort_values(PROCESS, kind="stable").to_dict("records")
    ids = case_ids.loc[out.sort_values(PROCESS, kind="stable").index].tolist()
    by_case: dict[int, list[dict[str, Any]]] = {}
    for i, r in zip(ids, records):
        by_case.setdefault(i, []).append(r)
    folded = [_fold(part) for _, part in sorted(by_case.items())]
    return pd.DataFrame(folded, columns=list(out.columns) + ["n_processes"])


def run_table(df: pd.DataFrame) -> pd.DataFrame:
    """(machine, run_id, started, rows, processes) per run, oldest first within a machine."""
    stamps = pd.to_datetime(df["timestamp"], utc=True, errors="coerce")
    frame = pd.DataFrame({"machine": df["machine"].astype(str), "run_id": df["run_id"].astype(str), "started": stamps,
                          "process": process_index(df), "framework": df["framework"].astype(str)})
    table = frame.groupby(["machine", "run_id"], sort=False).agg(
        started=("started", "min"), rows=("run_id", "size"), processes=("process", lambda p: int(p.max()) + 1)).reset_index()
    return table.sort_values(["machine", "started", "run_id"], na_position="first", kind="stable").reset_index(drop=True)


def runs_view(df: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per machine, its runs oldest first, each {id, started, rows, processes, newest}: what the
    page's run selector offers; the last one is what each machine shows by default."""
    out: dict[str, list[dict[str, Any]]] = {}
    for machine, part in run_table(df).groupby("machine", sort=True):
        runs = []
        for i, r in enumerate(part.itertuples(index=False)):
            started = r.started.strftime("%Y-%m-%d %H:%M UTC") if isinstance(r.started, pd.Timestamp) else "unknown date"
            runs.append({"id": r.run_id, "started": started, "rows": int(r.rows), "processes": int(r.processes),
                         "newest": i == len(part) - 1})
        out[str(machine)] = runs
    return out


def newest_runs(df: pd.DataFrame) -> set[str]:
    """The run each machine shows by default."""
    return {runs[-1]["id"] for runs in runs_view(df).values() if runs}
