"""The report's server-rendered content as plain data for the template: the headline
(machines, frameworks, versions, when) and the support matrix (what ran, what could not).

Kept apart from the template so the template only lays out — it decides nothing. The
rest of the page (matrix, charts, table) is drawn by the page's script from
`bench.report.payload`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.fmt import fmt_bytes

STATUS_ORDER = ("ok", "unsupported", "skipped", "timeout", "error")


# -- headline -----------------------------------------------------------------------------
def _versions(row: pd.Series) -> str:
    try:
        versions = json.loads(row["versions"] or "{}")
    except (TypeError, ValueError):
        versions = {}
    if not isinstance(versions, dict):
        versions = {}
    named = ", ".join(f"{k} {v}" for k, v in versions.items())
    version = row["framework_version"]
    return named or (f"{row['framework']} {version}" if isinstance(version, str) and version else "version not recorded")


def headline(rows: pd.DataFrame) -> dict[str, Any]:
    """Who, what, when: enough for a reader to know which results they are looking at."""
    machines = []
    for machine, part in rows.groupby("machine", sort=True):
        first = part.iloc[0]
        devices = sorted({f"{r.backend}: {r.device_name}" for r in part.itertuples()
                          if isinstance(r.backend, str) and r.backend and isinstance(r.device_name, str) and r.device_name})
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


def _cell(records: list[dict[str, Any]]) -> Cell:
    if not records:
        return Cell("none", "—", "not run")
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    text = " · ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s in counts)
    if counts.get("error", 0) or counts.get("timeout", 0):
        status = "error"
    elif counts.get("ok", 0) == len(records):
        status = "ok"
    elif counts.get("ok", 0):
        status = "partial"
    else:
        status = "unsupported"
    lines = [f"{r['status']}: {r['case']} {r['dtype']} — {r['reason']}" for r in records
             if r["status"] != "ok" and r["reason"]]
    lines += [f"ok, not compared: {r['case']} {r['dtype']} — {r['not_ranked']}" for r in records
              if r["status"] == "ok" and r["not_ranked"]]
    return Cell(status, text, "\n".join(dict.fromkeys(lines)) or "all cases ran and passed")


def support_matrix(rows: pd.DataFrame) -> dict[str, Any]:
    """(machine, framework) × workload, so two machines read as two blocks of rows."""
    workloads = sorted(rows["workload"].unique())
    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in rows[["machine", "framework", "workload", "status", "case", "dtype", "reason", "not_ranked"]].to_dict("records"):
        cells.setdefault((r["machine"], r["framework"]), {}).setdefault(r["workload"], []).append(r)
    lines = [{"machine": machine, "framework": fw, "cells": [_cell(by_workload.get(w, [])) for w in workloads]}
             for (machine, fw), by_workload in sorted(cells.items())]
    return {"workloads": workloads, "rows": lines, "multi_machine": rows["machine"].nunique() > 1}
