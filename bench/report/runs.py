"""Runs and processes as dimensions of the report's data, never as extra bars.

A results folder usually holds several runs of one machine (the committed baselines hold
three of the H200; a user re-runs the suite after an upgrade). A figure on the page is
always *one run's* figure for one case: a bar, a matrix cell and a ratio never mix runs,
and nothing is summed across them. By default each machine is shown at its newest run;
the page's run selector shows any other (`runs_view` lists them with their dates).

Inside one run a case may have been measured by several fresh worker processes (the
process is the unit: HOUSE.md). `per_case` folds them into the case's figure: the median
of the per-process figures with their between-process interval (the interval is
`bench.stats.summarize_processes`, as in `bench.processes.headline`, which the gate and
`bench show` use). The report folds here rather than through `headline` because the page
needs more of each case than its timing headline: the pooled samples for the distribution
plots and the LLM figures (tg, pp, TTFT) with their own between-process intervals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.results import KEY_COLUMNS
from bench.summary import with_conditions

from bench import stats
from bench.processes import with_process

PROCESS = "process"  # 0-based index of a framework's fresh worker process within its run; absent = 0
# One case of one run: the rows of its processes fold into one figure.
CASE_OF_RUN = ("run_id", *KEY_COLUMNS, "timing", "conditions")
TIMING_PREFIXES = ("", "latency_", "queued_", "device_")
# Figures the adapter measured outside the timed call (metrics keys): per process, once.
METRIC_FIGURES = ("tg_tokens_per_s", "pp_tokens_per_s", "ttft_s", "decode_tokens_per_s", "tokens_per_s",
                  "samples_per_s", "weight_gbps")
CONFIDENCE = 0.95


def process_index(df: pd.DataFrame) -> pd.Series:
    """Each row's process within its run (bench.processes: a row without one is process 0)."""
    return with_process(df)[PROCESS].astype("int64")


def between_process_interval(figures: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median, low, high) of per-process figures, by `bench.stats.summarize_processes` (the
    interval the gate and `bench show` use): one process gives no interval (NaN), never a
    falsely tight one."""
    summary = stats.summarize_processes([float(x) for x in figures if x is not None], confidence)
    return summary.median, summary.low, summary.high


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


NEWEST = "newest"  # the default view's pseudo-run: each case at the newest run that measured it
CASE_OF_MACHINE = ("machine", "framework", "workload", "params", "dtype", "mode")


def newest_of_each_case(df: pd.DataFrame) -> pd.Series:
    """True for the row of each (machine, framework, case) from the newest run that has it.

    A machine's runs need not cover the same cases (the committed H100 baseline is one run
    per framework and workload), so "the newest run" alone would hide most of a machine.
    The default view takes each case's newest measurement instead: still one run's figure
    per case (never a mix or a sum), with the run named beside it; a failure in a newer run
    replaces an older success, as it should."""
    table = run_table(df)
    order = {(m, r): i for i, (m, r) in enumerate(zip(table["machine"], table["run_id"]))}
    position = pd.Series([order.get((str(m), str(r)), -1) for m, r in zip(df["machine"], df["run_id"])], index=df.index)
    keys = df[list(CASE_OF_MACHINE)].astype(object).where(df[list(CASE_OF_MACHINE)].notna(), "")
    newest = position.groupby([keys[k] for k in CASE_OF_MACHINE], sort=False, dropna=False).transform("max")
    return position == newest
