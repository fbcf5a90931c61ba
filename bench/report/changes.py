"""What changed since the last run: the report's before/after, decided by the gate itself.

For each machine with two or more runs the page opens on the newest run against the one
before it, case by case, with the statistics and verdicts of `bench compare`: this module
calls `bench.gate.compare.compare` on the two runs' rows (each process a unit, as the gate
counts them) at report-build time, so the page shows the gate's answer and never works one
out again in JavaScript. Each earlier run against the one before it is computed too, so the
page's selector can show any step of a machine's history.

A run measured by one process per case gives the gate nothing to judge between processes:
its verdict is `insufficient` (the gate's own word and reason), and the page shows the plain
ratio of the two medians beside it, labelled as no verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.gate.compare import (CHANGED_DEFINITION, FASTER, INSUFFICIENT, MATCH_COLUMNS, MISSING, NEW, NOT_MEASURED,
                                NOW_CORRECT, NOW_FAILING, PRECISION_CHANGED, SAME, SLOWER, GateConfig, compare)
from bench.report.labels import case_label, params_text
from bench.report.runs import run_table
from bench.results import ResultsError

# Faster and slower first (what a reader came for), then the other changes, then the rest.
ORDER = (SLOWER, FASTER, NOW_FAILING, NOW_CORRECT, PRECISION_CHANGED, CHANGED_DEFINITION, NEW, MISSING,
         INSUFFICIENT, SAME, NOT_MEASURED)
CHANGED = frozenset({SLOWER, FASTER, NOW_FAILING, NOW_CORRECT, PRECISION_CHANGED})
# The columns the gate reads (bench.gate.compare): slicing the other ~100 per case is most of its time.
GATE_COLUMNS = (*MATCH_COLUMNS, "status", "correct", "reason", "workload_hash", "effective_precision", "median_s",
                "samples_s", "latency_samples_s", "queued_samples_s", "run_id", "process")


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{v:.4g}") if math.isfinite(v) else None


def pairs(runs: list[str]) -> list[tuple[str, str]]:
    """(before, after) pairs offered for a machine's runs, oldest first: each run against the
    one before it (each comparison is a full gate run, seconds per few hundred rows, so not
    every pair is computed)."""
    return list(zip(runs, runs[1:]))


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


def comparison(raw: pd.DataFrame, machine: str, before: str, after: str, config: GateConfig = GateConfig()) -> dict[str, Any]:
    """The gate's comparison of two runs of one machine, as the page's data."""
    mine = raw[raw["machine"].astype(str) == machine]
    mine = mine[[c for c in GATE_COLUMNS if c in mine]]
    base, cand = mine[mine["run_id"].astype(str) == before], mine[mine["run_id"].astype(str) == after]
    view: dict[str, Any] = {"before": before, "after": after}
    try:
        result = compare(base, cand, config, before, after)
    except ResultsError as exc:
        return {**view, "error": str(exc), "cases": [], "counts": {}}
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
    return {**view, "headline": result.headline, "counts": counts, "cases": cases}


def changes_view(raw: pd.DataFrame, config: GateConfig = GateConfig()) -> list[dict[str, Any]]:
    """Per machine with two or more runs: its runs (oldest first), the pairs compared, and the
    default pair (the newest run against the one before it)."""
    out = []
    table = run_table(raw)
    for machine, part in table.groupby("machine", sort=True):
        runs = part["run_id"].tolist()
        if len(runs) < 2:
            continue
        compared = {f"{b}|{a}": comparison(raw, str(machine), b, a, config) for b, a in pairs(runs)}
        out.append({"machine": str(machine), "runs": runs, "pairs": compared, "default": f"{runs[-2]}|{runs[-1]}",
                    "gate": {"alpha": config.alpha, "threshold": config.threshold, "figure": config.figure}})
    return out
