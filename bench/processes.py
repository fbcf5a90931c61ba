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
from typing import Callable, Sequence

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


def headline(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per case within a run (CASE_IN_RUN) from the rows of its processes.

    The figures (MEDIAN_COLUMNS) are the medians of the per-process figures of the processes
    whose row is ok; `process_low_s`/`process_high_s` are the between-process interval of
    `median_s` (bench.stats.process_interval; nan from one process), `n_processes` the
    processes behind the figure and `processes_run` those that ran the case. A process that
    died costs its own row only: the case stays ok on the others and the reason says what
    happened to it. Rows of other tools (timing `reference`) pass through, one per process.
    """
    d = with_process(df)
    if d.empty:
        return d.assign(**{c: pd.Series(dtype=float) for c in HEADLINE_COLUMNS})
    reference = d["timing"].astype(object).eq("reference") if "timing" in d else pd.Series(False, index=d.index)
    passthrough = d[reference].assign(n_processes=1, processes_run=1, process_low_s=math.nan,
                                      process_high_s=math.nan, process_spread=math.nan)
    rows = []
    keys = [c for c in CASE_IN_RUN if c in d]
    for _, part in d[~reference].groupby(keys, dropna=False, sort=False):
        works = _works(part)
        good = part[works]
        template = (good if len(good) else part).iloc[0].copy()
        template["n_processes"] = int(good["process"].nunique())
        template["processes_run"] = int(part["process"].nunique())
        template["process_low_s"] = template["process_high_s"] = template["process_spread"] = math.nan
        if len(good):
            for column in MEDIAN_COLUMNS:
                if column in good:
                    figures = pd.to_numeric(good[column], errors="coerce").groupby(good["process"]).median()
                    template[column] = float(figures.median()) if figures.notna().any() else math.nan
            summary = stats.summarize_processes(
                pd.to_numeric(good["median_s"], errors="coerce").groupby(good["process"]).median().tolist(), confidence)
            template["median_s"] = summary.median
            template["process_low_s"], template["process_high_s"], template["process_spread"] = summary.low, summary.high, summary.spread
            for column in ("correct", "precision_matches"):
                if column in good and good[column].notna().any():
                    template[column] = bool(good[column].dropna().astype(bool).all())
            if "plausible" in good and good["plausible"].notna().any():
                template["plausible"] = not bool((good["plausible"].dropna().astype(bool) == False).any())  # noqa: E712
            for throughput, amount in (("tflops", "flops"), ("gbps", "bytes_moved")):
                if throughput in template and amount in template:
                    scale = 1e12 if throughput == "tflops" else 1e9
                    value = template[amount]
                    template[throughput] = (float(value) / summary.median / scale
                                            if value is not None and pd.notna(value) and summary.median > 0 else math.nan)
            failed = part[~works & ~part["process"].isin(good["process"])]
            if len(failed):
                note = f"{template['n_processes']} of {template['processes_run']} processes stand behind this row; " \
                       + _describe_failures(failed)
                template["reason"] = "; ".join(filter(None, [str(template.get("reason") or ""), note]))
        rows.append(template)
    out = pd.DataFrame(rows)
    if len(passthrough):
        out = pd.concat([out, passthrough], ignore_index=True)
    return out.reset_index(drop=True)


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
