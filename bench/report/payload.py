"""The page's data: every row, the like-with-like groups, measures and roofs, as one JSON
document the page's script draws from.

The browser draws the charts (plotly.js), so what Python hands over is data, not
pictures: one compact row table (column names once, then arrays), the comparable groups
with each framework's time relative to the group's best and its interval, each
workload's measures in its users' units, and the roofline's roofs. Deciding stays here —
which rows are comparable, what the interval of a ratio is, which unit a workload is read
in — so the script only lays out, filters and draws, and the facts can be tested without
a browser.

The JSON is embedded in a `<script type="application/json">` element; `embed` escapes
`<`, `>` and `&` so no file-supplied string can close that element or open a comment.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import numpy as np
import pandas as pd

from bench.fmt import slug
from bench.report.data import comparable
from bench.report.measures import Measure, measure_values, measures_for
from bench.report.peaks import Roofs, roofs_for
from bench.report.runs import NEWEST, newest_of_each_case
from bench.summary import rank
from workloads import WORKLOADS

# One run's like-with-like group: a framework is compared with the other frameworks of the
# same run under the same conditions, never with its own other runs (bench.report.runs).
GROUP_KEYS = ("machine", "run_id", "workload", "params", "dtype", "timing", "mode", "conditions")
# Rows that are not ranked still belong to a case: a framework that failed or measured a
# different precision is shown in the case's line with its reason, not dropped.
CASE_KEYS = ("machine", "run_id", "workload", "params", "dtype", "mode")


def _r(value: Any, digits: int = 4) -> float | None:
    """A finite number rounded to `digits` significant digits (smaller JSON), else null."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _samples(values: Any) -> list[float]:
    """Raw samples, packed: [reference, then each sample in thousandths of it, as integers].

    Samples are most of the page's weight; 0.1% of the median is finer than any
    distribution plot draws and halves the bytes. The page's script unpacks them.
    """
    if values is None or isinstance(values, float):
        return []
    xs = [float(v) for v in list(values) if v is not None and math.isfinite(float(v))]
    if not xs:
        return []
    ref = _r(statistics.median(xs))
    if not ref:
        return []
    return [ref, *(round(1000 * x / ref) for x in xs)]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _versions(text: Any) -> str:
    try:
        versions = json.loads(text or "{}")
    except (TypeError, ValueError):
        return _text(text)
    return ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else _text(text)


def _loss(metrics: dict[str, Any]) -> list[float]:
    curve = metrics.get("loss_curve")
    if not isinstance(curve, list):
        return []
    out = []
    for item in curve:
        value = item.get("loss") if isinstance(item, dict) else item[1] if isinstance(item, (list, tuple)) and len(item) == 2 else item
        out.append(_r(value, 5))
    return out if any(v is not None for v in out) else []


# (JSON name, how to get it from a prepared row). Times are seconds, memory bytes.
ROW_FIELDS: tuple[tuple[str, Any], ...] = (
    ("machine", lambda r: _text(r["machine"])),
    ("framework", lambda r: _text(r["framework"])),
    ("workload", lambda r: _text(r["workload"])),
    ("case", lambda r: _text(r["case"])),
    ("params", lambda r: _text(r["params_text"])),
    ("dtype", lambda r: _text(r["dtype"])),
    ("precision", lambda r: _text(r["effective_precision"])),
    ("timing", lambda r: _text(r["timing"])),
    ("mode", lambda r: _text(r["mode"])),
    ("status", lambda r: _text(r["status"])),
    ("reason", lambda r: _text(r["reason"])),
    ("not_ranked", lambda r: _text(r["not_ranked"])),
    ("impl", lambda r: _text(r["implementation"])),
    ("version", lambda r: _text(r["framework_version"])),
    ("versions", lambda r: _versions(r["versions"])),
    ("backend", lambda r: _text(r["backend"])),
    ("device", lambda r: _text(r["device_name"])),
    ("math_mode", lambda r: _text(r["math_mode"])),
    ("cache", lambda r: _text(r["cache_state"])),
    ("run", lambda r: _text(r["run_id"])),
    ("processes", lambda r: _r(r["n_processes"])),
    ("conditions", lambda r: _text(r["conditions"])),
    ("n", lambda r: _r(r["n_samples"])),
    ("k", lambda r: _r(r["queued_inner_loops"])),
    ("med", lambda r: _r(r["median_s"])),
    ("lo", lambda r: _r(r["ci_low_s"])),
    ("hi", lambda r: _r(r["ci_high_s"])),
    ("lat", lambda r: _r(r["latency_median_s"])),
    ("lat_lo", lambda r: _r(r["latency_ci_low_s"])),
    ("lat_hi", lambda r: _r(r["latency_ci_high_s"])),
    ("q", lambda r: _r(r["queued_median_s"])),
    ("q_lo", lambda r: _r(r["queued_ci_low_s"])),
    ("q_hi", lambda r: _r(r["queued_ci_high_s"])),
    ("dev", lambda r: _r(r["device_median_s"])),
    ("dev_lo", lambda r: _r(r["device_ci_low_s"])),
    ("dev_hi", lambda r: _r(r["device_ci_high_s"])),
    ("overhead", lambda r: _r(r["dispatch_overhead_s"])),
    ("first", lambda r: _r(r["first_call_s"])),
    ("lat_samples", lambda r: _samples(r["latency_samples_s"])),
    ("q_samples", lambda r: _samples(r["queued_samples_s"])),
    ("dev_samples", lambda r: _samples(r["device_samples"])),
    ("samples", lambda r: [] if _samples(r["latency_samples_s"] if r["timing"] == "latency" else r["queued_samples_s"])
     else _samples(r["samples_s"])),  # only when the prefixed copy is absent (older rows)
    ("curve", lambda r: [[_r(k), _r(t)] for k, t in r["queue_curve"]]),
    ("peak_dev", lambda r: _r(r["peak_device_bytes"])),
    ("peak_dev_note", lambda r: _text(r["peak_device_note"])),
    ("peak_rss", lambda r: _r(r["peak_rss_bytes"])),
    ("model_bytes", lambda r: _r(r["metrics_dict"].get("model_bytes"))),
    ("flops", lambda r: _r(r["flops"])),
    ("bytes", lambda r: _r(r["bytes_moved"])),
    ("fps", lambda r: _r(r["flop_per_s"])),
    ("intensity", lambda r: _r(r["intensity"])),
    ("rank", lambda r: None if r["rank"] is None or pd.isna(r["rank"]) else int(r["rank"])),
    ("vs_best", lambda r: _r(r["vs_best"])),
    ("err", lambda r: _r(r["max_rel_error"], 2)),
    ("tol", lambda r: _r(r["tolerance"], 2)),
    ("plausibility", lambda r: _text(r["plausibility_note"])),
    ("barrier_check", lambda r: _text(r["barrier_check"])),
    ("placement_check", lambda r: _text(r["placement_check"])),
    ("loss", lambda r: _loss(r["metrics_dict"])),
)


def _measure_view(m: Measure) -> dict[str, Any]:
    return {"key": m.key, "name": m.name, "unit": m.unit, "higher": m.higher_is_better, "ci": m.from_median}


def headline_measures(shown: list[Measure]) -> list[int]:
    """The measures a matrix cell prints: what the workload's users quote (an LLM's tgN and ppN
    tokens/s, named by the adapter's label) where the rows carry them, else the figure derived
    from the timed call (the one the ranking uses)."""
    quoted = [i for i, m in enumerate(shown) if m.label_key]
    if quoted:
        return quoted
    ranked = next((i for i, m in enumerate(shown) if m.from_median), None)
    return [] if ranked is None else [ranked]


Record = dict[str, Any]  # one prepared row as a plain dict: pandas row access is 100× slower


def workloads_view(records: list[Record]) -> tuple[list[dict[str, Any]], list[list[list[float | None]]]]:
    """Per workload: its measures; and per row, the values of its workload's measures."""
    views: list[dict[str, Any]] = []
    values: list[list[list[float | None]]] = [[] for _ in records]
    by_workload: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_workload.setdefault(_text(r["workload"]), []).append(i)
    for name in sorted(by_workload):
        part = [records[i] for i in by_workload[name]]
        shown, columns = [], []
        for m in measures_for(part):
            view, triples = measure_values(part, m)
            shown.append(view)
            columns.append(triples)
        for j, i in enumerate(by_workload[name]):
            values[i] = [[_r(v) for v in col[j]] for col in columns]
        spec = WORKLOADS.get(name)
        views.append({"name": name, "anchor": "w-" + slug(name), "summary": spec.summary if spec else "",
                      "measures": [_measure_view(v) for v in shown],
                      "ranked": next((i for i, v in enumerate(shown) if v.from_median), None),
                      "headline": headline_measures(shown)})
    return views, values


def _ratio_interval(row: Record, best: Record) -> tuple[float, float]:
    """A conservative 95% interval of time/best time: the two medians' intervals at their
    opposite ends. An interval that reaches 1 means "not distinguishable from the best"."""
    def div(a: Any, b: Any) -> float:
        a, b = float(a if a is not None else math.nan), float(b if b is not None else math.nan)
        return a / b if b and math.isfinite(b) else math.nan

    return div(row["ci_low_s"], best["ci_high_s"]), div(row["ci_high_s"], best["ci_low_s"])


def _key(r: Record, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_text(r[k]) for k in names)


def groups(records: list[Record | None]) -> list[dict[str, Any]]:
    """The like-with-like groups, each with one cell per framework that ran the case; a
    record that is None takes no part (its index still names the same page row)."""
    ranked: dict[tuple, list[int]] = {}
    others: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        if r is None:
            continue
        if r["not_ranked"] == "":
            ranked.setdefault(_key(r, GROUP_KEYS), []).append(i)
        else:
            others.setdefault(_key(r, CASE_KEYS), []).append(i)

    def unranked_cells(case_key: tuple, taken: set[str]) -> dict[str, Any]:
        cells: dict[str, Any] = {}
        for i in others.get(case_key, []):
            r = records[i]
            if r["framework"] in taken or r["framework"] in cells:
                continue
            ok = r["status"] == "ok"
            cells[r["framework"]] = {"row": i, "status": "unranked" if ok else r["status"],
                                     "note": r["not_ranked"] if ok else (_text(r["reason"]) or r["status"])}
        return cells

    out: list[dict[str, Any]] = []
    seen_cases: set[tuple] = set()
    for key, members in ranked.items():
        members = sorted(members, key=lambda i: records[i]["median_s"])
        best = records[members[0]]
        cells: dict[str, Any] = {}
        for i in members:
            r = records[i]
            lo, hi = _ratio_interval(r, best)
            cells[r["framework"]] = {"row": i, "status": "ok", "ratio": _r(r["vs_best"]), "lo": _r(lo), "hi": _r(hi)}
        case_key = _key(best, CASE_KEYS)
        seen_cases.add(case_key)
        cells.update(unranked_cells(case_key, set(cells)))
        out.append(_group(key, best, cells))
    for case_key, members in others.items():  # cases no framework could be ranked in
        if case_key not in seen_cases:
            first = records[members[0]]
            key = tuple(_text(first[k]) if k not in ("timing", "conditions") else "" for k in GROUP_KEYS)
            out.append(_group(key, first, unranked_cells(case_key, set())))
    out.sort(key=lambda g: (g["machine"], g["run"], g["workload"], g["flops"] or 0, g["case"], g["dtype"], g["mode"],
                            g["timing"], g["conditions"]))
    return out


def all_groups(records: list[Record], latest: list[bool]) -> list[dict[str, Any]]:
    """Each run's groups (ranked within the run: the run selector's views) and the default
    view's groups (run NEWEST): per machine, each case at the newest run that measured it,
    ranked against the other frameworks' newest figures of the same machine."""
    view = pd.DataFrame([r for r, keep in zip(records, latest) if keep])
    ranked = rank(view).to_dict("records") if len(view) else []
    it = iter(ranked)
    newest = [{**r, **{k: v for k, v in next(it).items() if k in ("rank", "vs_best", "not_ranked")}, "run_id": NEWEST}
              if keep else None for r, keep in zip(records, latest)]
    out = groups(records) + groups(newest)
    for i, g in enumerate(out):
        g["id"] = f"g{i}"
    return out


def _group(key: tuple, first: Record, cells: dict[str, Any]) -> dict[str, Any]:
    named = dict(zip(GROUP_KEYS, key))
    return {"machine": named["machine"], "run": named["run_id"], "workload": named["workload"], "case": _text(first["case"]),
            "params": _text(first["params_text"]), "dtype": named["dtype"], "timing": named["timing"],
            "mode": named["mode"], "conditions": named["conditions"] or _text(first["conditions"]),
            "flops": _r(first["flops"]), "cells": cells}


def roofs_view(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The roofline's roofs per (machine, backend), each labelled with where it came from."""
    out = []
    for (machine, _backend), part in comparable(rows).groupby(["machine", "backend"], sort=True):
        roofs: Roofs = roofs_for(part)
        out.append({
            "machine": str(machine), "backend": str(_backend), "device": roofs.device, "text": roofs.describe(),
            "bandwidth": {"value": roofs.bandwidth.value, "source": roofs.bandwidth.source} if roofs.bandwidth else None,
            "compute": {d: {"value": p.value, "source": p.source} for d, p in roofs.compute.items()},
        })
    return out


def build_payload(rows: pd.DataFrame, colours: dict[str, str]) -> dict[str, Any]:
    rows = rows.sort_values(["machine", "workload", "flops", "params", "dtype", "mode", "framework"],
                            na_position="last", kind="stable")
    records = rows.to_dict("records")
    workloads, values = workloads_view(records)
    latest = newest_of_each_case(rows).tolist()
    table = [[get(r) for _, get in ROW_FIELDS] + [values[i], latest[i]] for i, r in enumerate(records)]
    return {
        "colours": colours,
        "frameworks": sorted(colours),
        "machines": sorted(rows["machine"].dropna().unique().tolist()),
        "workloads": workloads,
        "columns": [name for name, _ in ROW_FIELDS] + ["measures", "latest"],
        "rows": table,
        "groups": all_groups(records, latest),
        "roofs": roofs_view(rows),
        "filters": {
            "machine": sorted(rows["machine"].dropna().unique().tolist()),
            "dtype": sorted(rows["dtype"].dropna().unique().tolist()),
            "mode": sorted(rows["mode"].dropna().unique().tolist()),
            "timing": sorted(t for t in rows["timing"].dropna().unique().tolist() if t),
        },
    }


def _default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return _r(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def embed(payload: dict[str, Any]) -> str:
    """JSON safe inside `<script type="application/json">`: `<`, `>`, `&` as \\u escapes,
    so `</script>` or `<!--` in a file-supplied string stays text."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_default, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
