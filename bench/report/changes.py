"""What changed since the last run: the report's before/after, decided by the gate itself.

For each machine with two or more runs the page opens on the newest run against the one
before it, case by case, with the statistics and verdicts of `bench compare`: this module
calls `bench.gate.compare.compare` on the two runs' rows (each process a unit, as the gate
counts them) at report-build time, so the page shows the gate's answer and never works one
out again in JavaScript. The newest RECENT_STEPS steps of a machine's history (each run
against the one before it) are compared, so the page's selector can show them; each is a
full gate run (16 ms for runs of one row, seconds for a suite of a few hundred), so a folder
of 2,000 runs once spent most of ten minutes here. An older step is named on the page with
the `bench compare` command that judges it.

A run measured by one process per case gives the gate nothing to judge between processes:
its verdict is `insufficient` (the gate's own word and reason), and the page shows the plain
ratio of the two medians beside it, labelled as no verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.gate.compare import (CHANGED_DEFINITION, FASTER, INPUT_COLUMNS, INSUFFICIENT, MATCH_COLUMNS, MISSING, NEW,
                                NOT_MEASURED, NOW_CORRECT, NOW_FAILING, PRECISION_CHANGED, SAME, SLOWER, GateConfig,
                                compare)
from bench.report.labels import case_label, params_text
from bench.report.runs import run_table
from bench.results import ResultsError

# Faster and slower first (what a reader came for), then the other changes, then the rest.
ORDER = (SLOWER, FASTER, NOW_FAILING, NOW_CORRECT, PRECISION_CHANGED, CHANGED_DEFINITION, NEW, MISSING,
         INSUFFICIENT, SAME, NOT_MEASURED)
CHANGED = frozenset({SLOWER, FASTER, NOW_FAILING, NOW_CORRECT, PRECISION_CHANGED})
# Steps of a machine's history the page compares: the newest (the default) and the ones before it.
RECENT_STEPS = 5


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{v:.4g}") if math.isfinite(v) else None


def pairs(runs: list[str], steps: int = RECENT_STEPS) -> list[tuple[str, str]]:
    """(before, after) pairs compared for a machine's runs (oldest first): each of the newest
    `steps` runs against the one before it, oldest step first. Not every pair: each is a full
    gate run, and the cost of a report must not grow with every run ever kept."""
    every = list(zip(runs, runs[1:]))
    return every[-steps:] if steps > 0 else []


def _key(row: dict[str, Any]) -> tuple:
    return tuple(None if row.get(c) is None or (isinstance(row.get(c), float) and math.isnan(row[c])) else row[c]
                 for c in MATCH_COLUMNS)


def _medians(rows: pd.DataFrame) -> dict[tuple, float]:
    """Per case key, the median over its processes of their median_s (ok rows only)."""
    ok = rows[rows["status"] == "ok"]
    out: dict[tuple, list[float]] = {}
    for r in ok[list(MATCH_COLUMNS) + ["median_s"]].to_dict("records"):
        if r["median_s"] is not None and math.isfinite(float(r["median_s"])):
            out.setdefault(_key(r), []).append(float(r["median_s"]))
    return {k: float(np.median(v)) for k, v in out.items()}


def gate_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """The columns the gate reads (bench.gate.compare.INPUT_COLUMNS: the settings behind its
    notes included); slicing the other ~100 per case was most of its time."""
    return raw[[c for c in INPUT_COLUMNS if c in raw]]


def comparison(raw: pd.DataFrame, machine: str, before: str, after: str, config: GateConfig = GateConfig()) -> dict[str, Any]:
    """The gate's comparison of two runs of one machine, as the page's data."""
    mine = gate_rows(raw[raw["machine"].astype(str) == machine])
    run = mine["run_id"].astype(str)
    return judged(mine[run == before], mine[run == after], before, after, config)


def judged(base: pd.DataFrame, cand: pd.DataFrame, before: str, after: str, config: GateConfig = GateConfig()) -> dict[str, Any]:
    """`bench compare`'s verdicts on two runs' rows (`gate_rows`), as the page's data: its
    headline, its notes (the sides ran with different threads or CPUs), each case."""
    view: dict[str, Any] = {"before": before, "after": after}
    try:
        result = compare(base, cand, config, before, after)
    except ResultsError as exc:
        return {**view, "error": str(exc), "cases": [], "counts": {}, "notes": []}
    plain_before, plain_after = _medians(base), _medians(cand)
    order = {v: i for i, v in enumerate(ORDER)}
    cases = []
    for c in result.cases:
        k = c.key
        key = tuple(k.get(col) for col in MATCH_COLUMNS)
        ratio, lo, hi = c.ratio, c.ci_low, c.ci_high
        plain = None
        if not math.isfinite(ratio) and key in plain_before and key in plain_after and plain_before[key] > 0:
            plain = plain_after[key] / plain_before[key]
        cases.append({
            "framework": k["framework"], "backend": k.get("backend") or "", "workload": k["workload"],
            "case": case_label(k["params"]), "params": params_text(k["params"]), "dtype": k["dtype"], "mode": k.get("mode") or "",
            "timing": k.get("timing") or "", "verdict": c.verdict, "detail": c.detail,
            "ratio": _num(ratio), "lo": _num(lo), "hi": _num(hi), "plain_ratio": _num(plain),
            "before_s": _num(c.baseline_s) or _num(plain_before.get(key)), "after_s": _num(c.candidate_s) or _num(plain_after.get(key)),
            "processes": [c.baseline_runs, c.candidate_runs], "bar": _num(c.bar), "p": _num(c.p_adjusted),
        })
    cases.sort(key=lambda c: (order.get(c["verdict"], len(order)), -abs(math.log(c["ratio"])) if c["ratio"] else 0.0))
    counts: dict[str, int] = {}
    for c in cases:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    return {**view, "headline": result.headline, "counts": counts, "cases": cases, "notes": list(result.notes)}


def changes_view(raw: pd.DataFrame, config: GateConfig = GateConfig(), steps: int | None = None) -> list[dict[str, Any]]:
    """Per machine with two or more runs: its runs (oldest first), the gate's comparison of
    each of the newest `steps` (RECENT_STEPS) runs against the one before it (`pairs`), the default pair
    (the newest run against the one before it), and how many older steps were not compared.

    The rows are split by (machine, run) once; each compared step takes its two parts from
    that split (a filter of the whole table per step was another cost growing with runs²)."""
    steps = max(RECENT_STEPS if steps is None else steps, 1)
    table = run_table(raw)
    chosen = {str(machine): (part["run_id"].tolist(), pairs(part["run_id"].tolist(), steps))
              for machine, part in table.groupby("machine", sort=True) if len(part) >= 2}
    needed = {(machine, run) for machine, (_, steps_) in chosen.items() for pair in steps_ for run in pair}
    machines, run_ids = raw["machine"].astype(str), raw["run_id"].astype(str)
    wanted = pd.Series([key in needed for key in zip(machines, run_ids)], index=raw.index, dtype=bool)
    rows = gate_rows(raw[wanted])
    parts = dict(tuple(rows.groupby([machines[wanted], run_ids[wanted]], sort=False)))
    out = []
    for machine, (runs, steps_) in chosen.items():
        compared = {f"{b}|{a}": judged(parts[(machine, b)], parts[(machine, a)], b, a, config) for b, a in steps_}
        out.append({"machine": machine, "runs": runs, "pairs": compared, "default": f"{runs[-2]}|{runs[-1]}",
                    "older": len(runs) - 1 - len(steps_),
                    "gate": {"alpha": config.alpha, "threshold": config.threshold, "figure": config.figure}})
    return out
