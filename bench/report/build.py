"""Render the report: results files in, one self-contained `index.html` (plus its data) out.

The page embeds its charts (SVG), styles and script inline, so it opens from disk or a
mail attachment with no network and nothing beside it. Next to it, `data/` holds copies
of the parquet files it was built from and one CSV of every row, for the download links.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench.fmt import csv_safe
from bench.paths import output_dir_problem
from bench.report import charts, sections
from bench.report.data import Warn, comparable, load, prepare
from bench.report.peaks import Roofs
from bench.report.style import palette, themed
from workloads import WORKLOADS

HERE = Path(__file__).resolve().parent
PREFERRED_BASELINES = ("torch",)  # the framework most readers already know the speed of


class ReportError(ValueError):
    """The report cannot be built as asked (e.g. a baseline with no rows); the message says why."""


@dataclass
class WorkloadSection:
    name: str
    summary: str
    unit: str
    charts: list[charts.Chart]
    not_compared: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "w-" + slug(self.name)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def choose_baseline(rows: pd.DataFrame, requested: str | None) -> str:
    present = sorted(rows["framework"].unique())
    if requested is not None:
        if requested not in present:
            raise ReportError(f"baseline {requested!r} has no rows in these results (present: {', '.join(present)})")
        return requested
    counts = comparable(rows)["framework"].value_counts()
    for name in PREFERRED_BASELINES:
        if counts.get(name, 0):
            return name
    return str(counts.index[0]) if len(counts) else present[0]


def workload_section(name: str, rows: pd.DataFrame, colours: dict[str, str], baseline: str) -> WorkloadSection:
    """Every chart of one workload, drawn from its comparable rows of a single timing kind."""
    drawn, timing_notes = charts.single_timing(comparable(rows))
    key = slug(name)
    built = [
        charts.throughput_chart(drawn, colours, f"{key}-throughput"),
        charts.speedup_chart(drawn, colours, baseline, f"{key}-speedup"),
        charts.scaling_chart(drawn, colours, f"{key}-scaling"),
        charts.latency_chart(comparable(rows), colours, f"{key}-latency"),
        charts.memory_chart(comparable(rows), colours, f"{key}-memory"),
    ]
    spec = WORKLOADS.get(name)
    unit = str(rows["throughput_unit"].iloc[0]) if len(rows) else ""
    return WorkloadSection(name, spec.summary if spec else "", unit, [c for c in built if c is not None],
                           sections.not_compared(rows) + timing_notes)


def loss_charts(rows: pd.DataFrame, colours: dict[str, str]) -> list[charts.Chart]:
    """One loss chart per workload that reported loss curves (training workloads)."""
    found = []
    for name, part in comparable(rows).groupby("workload", sort=True):
        chart = charts.loss_chart(part, colours, f"{slug(str(name))}-loss")
        if chart is not None:
            chart.title = f"{name}: loss curves"
            found.append(chart)
    return found


def write_data(rows: pd.DataFrame, sources: Iterable[str], data_dir: Path) -> list[dict[str, str]]:
    """Copies of the input parquet files and one CSV of every row; returns the download links.

    The CSV leaves out the raw-sample list columns (they are in the parquet files) so it
    opens in a spreadsheet.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir=data_dir.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide the downloads from a web server
    try:
        links = _fill_data(rows, sources, staging)
        _swap_in(staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return links


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fill_data(rows: pd.DataFrame, sources: Iterable[str], data_dir: Path) -> list[dict[str, str]]:
    links = []
    used: set[str] = set()
    for src in dict.fromkeys(sources):
        src_path = Path(src)
        name = src_path.name if src_path.name not in used else f"{src_path.parent.name}-{src_path.name}"
        used.add(name)
        shutil.copy2(src_path, data_dir / name)
        links.append({"href": f"data/{name}", "label": name})
    flat = rows.drop(columns=[c for c in rows.columns if c.endswith("samples_s") or c == "metrics_dict"])
    flat.map(csv_safe).to_csv(data_dir / "results.csv", index=False)  # a "=HYPERLINK(…)" stays text
    links.insert(0, {"href": "data/results.csv", "label": "results.csv (every row, no raw samples)"})
    return links


def _swap_in(staging: Path, data_dir: Path) -> None:
    """Put the new data/ in place of the old one only once it is complete. The inputs may
    live in the old data/ (`bench report reports/data` re-renders a report from its own
    copies, as the README suggests): they were copied into `staging` first, so replacing
    the old folder loses nothing. (It used to be deleted before the copy: the inputs went.)"""
    old = None
    if data_dir.exists() or data_dir.is_symlink():
        if not data_dir.is_dir() or data_dir.is_symlink():
            raise ReportError(f"{data_dir} is not a folder bench wrote; move it away first")
        old = Path(tempfile.mkdtemp(prefix=".data-old-", dir=data_dir.parent))
        data_dir.rename(old / "data")
    staging.rename(data_dir)
    if old is not None:
        shutil.rmtree(old)  # ours alone: stale copies from an earlier report would mislead


def _static(name: str) -> str:
    return (HERE / "static" / name).read_text(encoding="utf-8")


def render(context: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html.j2").render(**context, css=_static("report.css"), js=_static("report.js"))


def build_report(paths: Iterable[Path | str], out_dir: Path | str, baseline: str | None = None,
                 warn: Warn = lambda message: None) -> Path:
    """Render the report of every results file under `paths` into `out_dir`/index.html."""
    out_dir = Path(out_dir)
    problem = output_dir_problem(out_dir)  # before the charts are drawn, not after
    if problem is None and out_dir.exists() and not out_dir.is_dir():
        problem = f"cannot write the report to {out_dir}: it is a file"
    if problem:
        raise ReportError(problem)
    rows = prepare(load(paths, warn))
    colours = palette(rows["framework"])
    baseline = choose_baseline(rows, baseline)
    with themed():
        workloads = [workload_section(str(name), part, colours, baseline)
                     for name, part in rows.groupby("workload", sort=True)]
        roofline, roofs = charts.roofline_chart(comparable(rows), colours, "roofline")
        losses = loss_charts(rows, colours)
    all_charts = [c for w in workloads for c in w.charts] + ([roofline] if roofline else []) + losses
    out_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": sections.headline(rows),
        "colours": colours,
        "baseline": baseline,
        "support": sections.support_matrix(rows),
        "winners": sections.winners(rows),
        "workloads": workloads,
        "roofline": roofline,
        "roofs": [_roofs_view(r) for r in roofs],
        "losses": losses,
        "table": sections.table(rows),
        "downloads": write_data(rows, rows["source"], out_dir / "data"),
        "n_charts": len(all_charts),
    }
    index = out_dir / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(render(context), encoding="utf-8")
    tmp.replace(index)  # a browser reloading mid-build never sees half a page
    return index


def _roofs_view(roofs: Roofs) -> dict[str, Any]:
    return {"device": roofs.device, "text": roofs.describe(),
            "measured": any(p.measured for p in [*roofs.compute.values(), *([roofs.bandwidth] if roofs.bandwidth else [])])}
