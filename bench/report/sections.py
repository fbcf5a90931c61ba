"""The report's non-chart content as plain data for the template: headline, support
matrix, winners, and the table of every row.

Kept apart from the charts so the page's facts can be tested without parsing SVG, and
from the template so the template only lays out — it decides nothing.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from bench.fmt import fmt_bytes, fmt_num, fmt_time
from bench.report.data import comparable

STATUS_ORDER = ("ok", "unsupported", "skipped", "timeout", "error")


def _finite(value: Any) -> bool:
    """A finite number, numpy scalars included (parquet integers arrive as numpy.int64)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# -- headline -----------------------------------------------------------------------------
def _versions(row: pd.Series) -> str:
    try:
        versions = json.loads(row["versions"] or "{}")
    except (TypeError, ValueError):
        versions = {}
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or f"{row['framework']} {row['framework_version']}"


def headline(rows: pd.DataFrame) -> dict[str, Any]:
    """Who, what, when: enough for a reader to know which results they are looking at."""
    machines = []
    for machine, part in rows.groupby("machine", sort=True):
        first = part.iloc[0]
        devices = sorted({f"{r.backend}: {r.device_name}" for r in part.itertuples() if r.backend and r.device_name})
        frameworks = [
            {"name": fw, "versions": _versions(p.iloc[0]), "backends": ", ".join(sorted(p["backend"].dropna().unique()))}
            for fw, p in part.groupby("framework", sort=True)
        ]
        machines.append({
            "name": machine, "chip": first["chip"], "os": first["os"], "cpu_count": first["cpu_count"],
            "memory": fmt_bytes(first["memory_bytes"]), "hosts": ", ".join(sorted(part["host"].dropna().unique())),
            "devices": devices, "frameworks": frameworks,
        })
    stamps = pd.to_datetime(rows["timestamp"], utc=True).dropna()
    when = "unknown"
    if len(stamps):
        lo, hi = stamps.min().strftime("%Y-%m-%d %H:%M"), stamps.max().strftime("%Y-%m-%d %H:%M")
        when = f"{lo} UTC" if lo == hi else f"{lo} – {hi} UTC"
    counts = rows["status"].value_counts()
    return {
        "machines": machines,
        "when": when,
        "suites": ", ".join(sorted(rows["suite"].dropna().unique())) or "—",
        "suite_versions": ", ".join(sorted(rows["suite_version"].dropna().unique())) or "—",
        "runs": sorted(rows["run_id"].dropna().unique()),
        "n_rows": len(rows),
        "status_counts": [(s, int(counts.get(s, 0))) for s in STATUS_ORDER if counts.get(s, 0)],
    }


# -- support matrix -----------------------------------------------------------------------
@dataclass
class Cell:
    status: str  # the cell's overall class: ok, partial, unsupported, error, none
    text: str
    title: str  # hover text: the reasons, one line per case


def _cell(part: pd.DataFrame) -> Cell:
    if part.empty:
        return Cell("none", "—", "not run")
    counts = part["status"].value_counts()
    text = " · ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s in counts)
    if counts.get("error", 0) or counts.get("timeout", 0):
        status = "error"
    elif counts.get("ok", 0) == len(part):
        status = "ok"
    elif counts.get("ok", 0):
        status = "partial"
    else:
        status = "unsupported"
    lines = [f"{r['status']}: {r['case']} {r['dtype']} — {r['reason']}" for _, r in part.iterrows()
             if r["status"] != "ok" and r["reason"]]
    lines += [f"ok, not compared: {r['case']} {r['dtype']} — {r['not_ranked']}" for _, r in part.iterrows()
              if r["status"] == "ok" and r["not_ranked"]]
    return Cell(status, text, "\n".join(dict.fromkeys(lines)) or "all cases ran and passed")


def support_matrix(rows: pd.DataFrame) -> dict[str, Any]:
    """(machine, framework) × workload, so two machines read as two blocks of rows."""
    workloads = sorted(rows["workload"].unique())
    lines = []
    for (machine, fw), part in rows.groupby(["machine", "framework"], sort=True):
        lines.append({"machine": machine, "framework": fw,
                      "cells": [_cell(part[part["workload"] == w]) for w in workloads]})
    return {"workloads": workloads, "rows": lines, "multi_machine": rows["machine"].nunique() > 1}


# -- winners ------------------------------------------------------------------------------
def winners(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per like-with-like group: the fastest framework and by how much it beat the next."""
    out = []
    ranked = comparable(rows)
    for _, group in ranked.groupby(["machine", "workload", "params", "dtype", "timing"], sort=False):
        group = group.sort_values("median_s")
        best = group.iloc[0]
        second = group.iloc[1] if len(group) > 1 else None
        out.append({
            "machine": best["machine"], "workload": best["workload"], "case": best["case"], "dtype": best["dtype"],
            "timing": best["timing"], "framework": best["framework"],
            "throughput": f"{fmt_num(best['throughput'])} {best['throughput_unit']}",
            "runner_up": second["framework"] if second is not None else "—",
            "margin": f"{second['median_s'] / best['median_s']:.2f}×" if second is not None else "only one",
            "n": len(group), "flops": best["flops"],
        })
    out.sort(key=lambda w: (w["machine"], w["workload"], w["flops"] if _finite(w["flops"]) else 0, w["case"], w["dtype"]))
    return out


# -- every row ----------------------------------------------------------------------------
Column = tuple[str, Callable[[pd.Series], str], Callable[[pd.Series], Any]]


def _raw(key: str) -> Callable[[pd.Series], Any]:
    return lambda r: r[key] if _finite(r[key]) else ""


def _text(key: str) -> Callable[[pd.Series], str]:
    return lambda r: "" if r[key] is None or (isinstance(r[key], float) and math.isnan(r[key])) else str(r[key])


def _note(r: pd.Series) -> str:
    if r["status"] != "ok":
        return str(r["reason"] or "")
    return f"not compared: {r['not_ranked']}" if r["not_ranked"] else ""


TABLE_COLUMNS: tuple[Column, ...] = (
    ("machine", _text("machine"), _text("machine")),
    ("framework", _text("framework"), _text("framework")),
    ("version", _text("framework_version"), _text("framework_version")),
    ("backend", _text("backend"), _text("backend")),
    ("workload", _text("workload"), _text("workload")),
    ("case", _text("case"), lambda r: r["flops"] if _finite(r["flops"]) else 0),
    ("dtype", _text("dtype"), _text("dtype")),
    ("status", _text("status"), _text("status")),
    ("timing", _text("timing"), _text("timing")),
    ("median", lambda r: fmt_time(r["median_s"]), _raw("median_s")),
    ("95% CI", lambda r: f"{fmt_time(r['ci_low_s'])} – {fmt_time(r['ci_high_s'])}" if _finite(r["ci_low_s"]) else "—",
     _raw("ci_low_s")),
    ("latency", lambda r: fmt_time(r["latency_median_s"]), _raw("latency_median_s")),
    ("queued", lambda r: fmt_time(r["queued_median_s"]), _raw("queued_median_s")),
    ("overhead", lambda r: fmt_time(r["dispatch_overhead_s"]), _raw("dispatch_overhead_s")),
    ("first call", lambda r: fmt_time(r["first_call_s"]), _raw("first_call_s")),
    ("throughput", lambda r: f"{fmt_num(r['throughput'])} {r['throughput_unit']}" if _finite(r["throughput"]) else "—",
     _raw("throughput")),
    ("rank", lambda r: "" if pd.isna(r["rank"]) else str(int(r["rank"])), lambda r: "" if pd.isna(r["rank"]) else int(r["rank"])),
    ("× best", lambda r: f"{r['vs_best']:.2f}×" if _finite(r["vs_best"]) else "—", _raw("vs_best")),
    ("precision", _text("effective_precision"), _text("effective_precision")),
    ("max rel. err", lambda r: fmt_num(r["max_rel_error"], ".1e"), _raw("max_rel_error")),
    ("peak device", lambda r: fmt_bytes(r["peak_device_bytes"]), _raw("peak_device_bytes")),
    ("peak RSS", lambda r: fmt_bytes(r["peak_rss_bytes"]), _raw("peak_rss_bytes")),
    ("note", _note, _note),
    ("run", _text("run_id"), _text("run_id")),
)


def table(rows: pd.DataFrame) -> dict[str, Any]:
    """Display text and sort key per cell: the page sorts numbers as numbers, not as text."""
    ordered = rows.sort_values(["machine", "workload", "flops", "params", "dtype", "framework"], na_position="last")
    body = [
        {"status": r["status"], "ranked": r["not_ranked"] == "",
         "cells": [(show(r), sort(r)) for _, show, sort in TABLE_COLUMNS]}
        for _, r in ordered.iterrows()
    ]
    return {"headers": [name for name, _, _ in TABLE_COLUMNS], "rows": body,
            "statuses": [s for s in STATUS_ORDER if s in set(rows["status"])]}


def not_compared(rows: pd.DataFrame) -> list[str]:
    """Rows that ran but may not be compared, each with the like-with-like reason."""
    left_out = rows[(rows["status"] == "ok") & (rows["not_ranked"] != "")]
    return [f"{r['framework']} · {r['case']} · {r['dtype']} on {r['machine']}: {r['not_ranked']}"
            for _, r in left_out.iterrows()]
