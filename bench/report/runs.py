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
plots and the LLM figures (tg, pp, TTFT) with their own between-process intervals. Which
processes stand behind a case is decided once, by `bench.processes.outcome` (a process that
died costs its own rows only), so the page and `bench show` never disagree on a case's status.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.results import KEY_COLUMNS
from bench.summary import with_conditions

from bench import stats
from bench.processes import case_index, outcome, with_note, with_process

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
    """The processes that stand behind one case (`bench.processes.outcome`) → its row: the
    timings are the median of the per-process figures with the between-process interval;
    samples are pooled for the distribution plots; the LLM figures get their own intervals."""
    if len(records) == 1:  # one process: its own (within-process) interval is all there is
        return dict(records[0])
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
    return out


def per_case(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and case (CASE_OF_RUN): a case measured by several processes of one
    run becomes one row, its figure the median of theirs with the between-process interval.
    Which processes stand behind it is `bench.processes.outcome`, the rule `bench show` and
    the gate's tables use: a process that died costs its own rows only, and the reason says
    "2 of 3 processes stand behind this row; …"; a case no process measured shows its first
    failure. `n_processes` says how many processes stand behind the figure (0: none).
    Rows of different runs are never merged."""
    out = with_conditions(df).reset_index(drop=True)
    out[PROCESS] = process_index(out)
    case = case_index(out, CASE_OF_RUN)
    result = outcome(out, case)
    counts = result.n_processes.reindex(case).to_numpy()
    if case.nunique() == len(out):  # one process per case: each row is its case
        return out.assign(n_processes=counts)
    standing = out[result.stands].sort_values(PROCESS, kind="stable")
    by_case: dict[int, list[dict[str, Any]]] = {}
    for number, record in zip(case[standing.index].tolist(), standing.to_dict("records")):
        by_case.setdefault(number, []).append(record)
    measured = set(case[result.works].tolist())
    folded = []
    for number, records in sorted(by_case.items()):
        row = _fold(records) if number in measured else dict(records[0])
        if number in result.notes:
            row["reason"] = with_note(row.get("reason"), result.notes[number])
        row["n_processes"] = int(result.n_processes[number])
        folded.append(row)
    return pd.DataFrame(folded, columns=list(out.columns) + ["n_processes"])


def run_table(df: pd.DataFrame) -> pd.DataFrame:
    """(machine, run_id, started, rows, processes, file) per run, oldest first within a
    machine; `file` is the results file its first row was read from (what `bench compare`
    takes)."""
    stamps = pd.to_datetime(df["timestamp"], utc=True, errors="coerce")
    source = df["source"].astype(str) if "source" in df else pd.Series("", index=df.index)
    frame = pd.DataFrame({"machine": df["machine"].astype(str), "run_id": df["run_id"].astype(str), "started": stamps,
                          "process": process_index(df), "file": source})
    table = frame.groupby(["machine", "run_id"], sort=False).agg(
        started=("started", "min"), rows=("run_id", "size"), processes=("process", "max"), file=("file", "first")).reset_index()
    table["processes"] = table["processes"].astype("int64") + 1
    return table.sort_values(["machine", "started", "run_id"], na_position="first", kind="stable").reset_index(drop=True)


def runs_view(df: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per machine, its runs oldest first, each {id, started, rows, processes, file, newest}: what the
    page's run selector offers; the last one is what each machine shows by default."""
    out: dict[str, list[dict[str, Any]]] = {}
    for machine, part in run_table(df).groupby("machine", sort=True):
        runs = []
        for i, r in enumerate(part.itertuples(index=False)):
            started = r.started.strftime("%Y-%m-%d %H:%M UTC") if isinstance(r.started, pd.Timestamp) else "unknown date"
            runs.append({"id": r.run_id, "started": started, "rows": int(r.rows), "processes": int(r.processes),
                         "file": r.file, "newest": i == len(part) - 1})
        out[str(machine)] = runs
    return out


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
