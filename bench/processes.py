"""The process as the unit: who measured a row, counting each process once, and the figure
of a case over its processes.

Samples inside one process share its luck (the core it landed on, its allocator, one of the
speed states a fresh process settles into: 30-250% apart for small ops on the lent GPU's host,
±5-25% for JAX/TensorFlow CPU calls here), so a figure that ranks or compares stands on
several fresh processes. A process is identified by PROCESS_KEY: its run, its framework and its
index among that framework's fresh workers in the run (`bench run --processes`). A row from a
file written before the `process` column existed is process 0: such a run had one process per
framework.

Every reader counts a process once. The same run can reach a reader twice (a file given twice,
a baseline folder holding its own `baselines/`, a report's `data/` copies inside the results
folder); `dedupe` keeps each process's rows from the first file they were read from, so a copy
adds neither rows nor processes. A pure module over pandas and bench.stats: results, show, the
gate and the report all import it, it imports none of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from bench import stats

PROCESS_KEY = ("run_id", "framework", "process")
# One row of one process: its process, the case and timing it measured, and when it was written
# (a copy of a file keeps that instant; two runs that happen to share a run id do not).
ROW_IDENTITY = (*PROCESS_KEY, "workload", "params", "dtype", "mode", "timing", "timestamp")
# A case within one run: the processes of a run are pooled over these, never across runs
# (runs are a dimension of the data, not extra samples of one figure).
CASE_IN_RUN = ("run_id", "machine", "framework", "workload", "params", "dtype", "mode")
# The per-process figures a headline row carries as medians over processes.
MEDIAN_COLUMNS = ("median_s", "latency_median_s", "queued_median_s", "device_median_s", "dispatch_overhead_s",
                  "first_call_s")
# Columns a headline row adds to the columns of its processes' rows.
HEADLINE_COLUMNS = ("n_processes", "processes_run", "process_low_s", "process_high_s", "process_spread")


def with_process(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a `process` column of integers: missing or null (a file from before the
    column) reads as 0, one process per framework and run."""
    out = df.copy()
    if "process" not in out:
        out["process"] = 0
    out["process"] = pd.to_numeric(out["process"], errors="coerce").fillna(0).astype("int64")
    return out


def first_copies(df: pd.DataFrame) -> np.ndarray:
    """True for each row read from the first file (`source`) that holds its identity
    (ROW_IDENTITY), False for a copy of it in a later file. Rows of one file are all kept
    (one process may legitimately time one case twice, e.g. `-p` given twice)."""
    d = with_process(df)
    if d.empty or "source" not in d:
        return np.ones(len(d), dtype=bool)
    columns = [c for c in ROW_IDENTITY if c in d]
    ident = d[columns].astype(object).where(d[columns].notna(), None)
    first: dict[tuple, object] = {}
    return np.asarray([first.setdefault(key, source) == source
                       for key, source in zip(ident.itertuples(index=False, name=None), d["source"])], dtype=bool)


def dedupe(df: pd.DataFrame, warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Each process's rows once (`first_copies`), with `process` filled (`with_process`);
    `warn` hears how many copies were dropped and from which files."""
    out = with_process(df)
    mask = first_copies(out)
    if not mask.all() and warn is not None:
        copies = out.loc[~mask, "source"].astype(str)
        files = ", ".join(sorted(set(copies))[:3]) + ("…" if copies.nunique() > 3 else "")
        warn(f"{int((~mask).sum())} rows of processes already read from another file were counted once "
             f"(copies in {files})")
    return out[mask].reset_index(drop=True)


def count_processes(df: pd.DataFrame) -> int:
    """How many distinct processes stand behind `df`'s rows."""
    if df.empty:
        return 0
    # a set of plain tuples: the gate calls this per case, and a frame copy each time (with_process)
    # made it most of `bench report`'s time with several runs (15 ms a call under load)
    processes = df["process"].tolist() if "process" in df else [0] * len(df)
    return len({(run, fw, 0 if p is None or p != p else int(p))
                for run, fw, p in zip(df["run_id"].tolist(), df["framework"].tolist(), processes)})


def per_process(df: pd.DataFrame, column: str, by: Sequence[str] = ()) -> pd.Series:
    """Each process's figure for `column`, per group `by`: the median of that process's
    values (one value in the usual case of one row per process and case)."""
    d = with_process(df)
    values = pd.to_numeric(d[column], errors="coerce")
    return values.groupby([d[c] for c in (*by, *PROCESS_KEY)], dropna=False).median()


def _works(rows: pd.DataFrame) -> pd.Series:
    ok = rows["status"] == "ok"
    if "median_s" in rows:
        ok &= pd.to_numeric(rows["median_s"], errors="coerce").gt(0)
    return ok


def _describe_failures(failed: pd.DataFrame) -> str:
    reasons = [str(r) for r in failed.get("reason", pd.Series(dtype=object)).dropna() if str(r)]
    first = f": {reasons[0][:120]}" if reasons else ""
    statuses = "/".join(sorted(set(map(str, failed["status"]))))
    return f"{failed['process'].nunique()} process(es) {statuses}{first}"


def case_index(df: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each row's case as an integer, numbered in order of first appearance (null keys are
    one value: a row without a mode is still one case with its own processes)."""
    present = [c for c in keys if c in df]
    if not present or df.empty:
        return pd.Series(0, index=df.index, dtype="int64")
    frame = df[present].astype(object).where(df[present].notna(), "")
    return frame.groupby(present, sort=False, dropna=False).ngroup().astype("int64")


@dataclass(frozen=True)
class Outcome:
    """Who stands behind each case's figure, by one rule for every reader (`bench show`, the
    gate's tables, the report): a process that died costs its own rows only.

    `works`: the row's process measured the case (ok, with a positive median). `stands`: the
    row is behind the case's line: it works, or no row of its case works (then the failure
    is the case's outcome, its first row with its own reason). Per case (indexed by case
    number): `n_processes` behind the figure (0 when none worked), `processes_run` that ran
    it, and `note` for a case that stands on some of its processes, saying how many and what
    happened to the others."""

    works: pd.Series
    stands: pd.Series
    n_processes: pd.Series
    processes_run: pd.Series
    notes: dict[int, str]


def outcome(df: pd.DataFrame, case: pd.Series) -> Outcome:
    """The `Outcome` of `df`'s cases (`case`: `case_index`), over its `process` column."""
    works = _works(df)
    any_works = works.groupby(case).transform("any").astype(bool)
    stands = works | ~any_works
    process = df["process"]
    n_processes = process[works].groupby(case[works]).nunique().reindex(case.unique(), fill_value=0).astype("int64")
    processes_run = process.groupby(case).nunique().astype("int64")
    good = pd.MultiIndex.from_arrays([case[works], process[works]])
    lost = ~works & any_works & ~pd.MultiIndex.from_arrays([case, process]).isin(good)
    notes: dict[int, str] = {}
    for number, failed in df[lost].groupby(case[lost], sort=False):
        notes[int(number)] = (f"{n_processes[number]} of {processes_run[number]} processes stand behind this row; "
                              + _describe_failures(failed))
    return Outcome(works, stands, n_processes, processes_run, notes)


def with_note(reason: Any, note: str | None) -> str:
    """A row's own reason with its case's `Outcome` note after it."""
    own = "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else str(reason)
    return "; ".join(filter(None, [own, note or ""]))


def _per_process_median(good: pd.DataFrame, case: pd.Series, column: str) -> pd.Series:
    """Per case, the median over its processes of each process's median of `column`."""
    values = pd.to_numeric(good[column], errors="coerce")
    return values.groupby([case, good["process"]]).median().groupby(level=0).median()


def headline(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per case within a run (CASE_IN_RUN) from the rows of its processes.

    The figures (MEDIAN_COLUMNS) are the medians of the per-process figures of the processes
    whose row is ok; `process_low_s`/`process_high_s` are the between-process interval of
    `median_s` (bench.stats.process_interval; nan from one process), `n_processes` the
    processes behind the figure and `processes_run` those that ran the case. A process that
    died costs its own row only (`outcome`): the case stays ok on the others and the reason
    says what happened to it. Rows of other tools (timing `reference`) pass through, one per
    process. Grouped operations over the whole table, not a loop of frame operations per case
    (5 s at 432 rows under load, most of `bench show` and the report's summary)."""
    d = with_process(df)
    if d.empty:
        return d.assign(**{c: pd.Series(dtype=float) for c in HEADLINE_COLUMNS})
    reference = d["timing"].astype(object).eq("reference") if "timing" in d else pd.Series(False, index=d.index)
    passthrough = d[reference].assign(n_processes=1, processes_run=1, process_low_s=math.nan,
                                      process_high_s=math.nan, process_spread=math.nan)
    d = d[~reference]
    if d.empty:
        return passthrough.reset_index(drop=True)
    case = case_index(d, CASE_IN_RUN)
    result = outcome(d, case)
    first = ~case[result.stands].duplicated()
    out = d[result.stands][first.to_numpy()].copy()  # each case's first row that stands behind it
    numbers = case[result.stands][first.to_numpy()].to_numpy()
    out.index = numbers
    out["n_processes"] = result.n_processes.reindex(numbers).to_numpy()
    out["processes_run"] = result.processes_run.reindex(numbers).to_numpy()
    out["process_low_s"] = out["process_high_s"] = out["process_spread"] = math.nan
    good, good_case = d[result.works], case[result.works]
    measured = numbers[np.isin(numbers, good_case.unique())]
    if len(measured):
        for column in MEDIAN_COLUMNS:
            if column in good:
                out.loc[measured, column] = _per_process_median(good, good_case, column).reindex(measured).to_numpy()
        per_process = pd.to_numeric(good["median_s"], errors="coerce").groupby([good_case, good["process"]]).median()
        summaries = {int(n): stats.summarize_processes(part.tolist(), confidence)
                     for n, part in per_process.groupby(level=0, sort=False)}
        out.loc[measured, "median_s"] = [summaries[n].median for n in measured]
        out.loc[measured, "process_low_s"] = [summaries[n].low for n in measured]
        out.loc[measured, "process_high_s"] = [summaries[n].high for n in measured]
        out.loc[measured, "process_spread"] = [summaries[n].spread for n in measured]
        for column in ("correct", "precision_matches", "plausible"):
            if column not in good:
                continue
            known = good[column].notna()
            if not known.any():
                continue
            # every known flag true: for `plausible` the same as "no process found it implausible"
            decided = good.loc[known, column].astype(bool).groupby(good_case[known]).all()
            out[column] = out[column].astype(object)
            out.loc[decided.index, column] = decided.astype(bool).to_numpy()
        for throughput, amount, scale in (("tflops", "flops", 1e12), ("gbps", "bytes_moved", 1e9)):
            if throughput in out and amount in out:
                figure = pd.to_numeric(out.loc[measured, "median_s"], errors="coerce")
                value = pd.to_numeric(out.loc[measured, amount], errors="coerce")
                out.loc[measured, throughput] = (value / figure / scale).where(figure > 0).to_numpy()
    for number, note in result.notes.items():
        out.loc[number, "reason"] = with_note(out.loc[number, "reason"] if "reason" in out else None, note)
    out = out.reset_index(drop=True)
    if len(passthrough):
        out = pd.concat([out, passthrough], ignore_index=True)
    return out


def process_label(row: pd.Series) -> str:
    """How many processes stand behind a headline row, as the tables print it."""
    n = row.get("n_processes")
    run = row.get("processes_run")
    if n is None or pd.isna(n):
        return "—"
    n, run = int(n), int(run) if run is not None and pd.notna(run) else int(n)
    text = f"{n}" if n == run else f"{n} of {run}"
    if n == 1:
        return text + " (no interval)"
    low, high, median = (row.get(c) for c in ("process_low_s", "process_high_s", "median_s"))
    try:
        half = max(float(high) - float(median), float(median) - float(low)) / float(median)
    except (TypeError, ValueError, ZeroDivisionError):
        return text
    return f"{text} ±{half:.0%}" if math.isfinite(half) else text
