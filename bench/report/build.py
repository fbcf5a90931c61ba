"""Render the report: results files in, one self-contained `index.html` (plus its data) out.

The page embeds its charts (SVG), styles and script inline, so it opens from disk or a
mail attachment with no network and nothing beside it. Next to it, `data/` holds copies
of the parquet files it was built from and one CSV of every row, for the download links.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

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
    if data_dir.exists():
        shutil.rmtree(data_dir)  # ours alone: stale copies from an earlier report would mislead
    data_dir.mkdir(parents=True)
    links = []
    used: set[str] = set()
    for src in dict.fromkeys(sources):
        src_path = Path(src)
        name = src_path.name if src_path.name not in used else f"{src_path.parent.name}-{src_path.name}"
        used.add(name)
        shutil.copy2(src_path, data_dir / name)
        links.append({"href": f"data/{name}", "label": name})
    flat = rows.drop(columns=[c for c in rows.columns if c.endswith("samples_s") or c == "metrics_dict"])
    flat.to_csv(data_dir / "results.csv", index=False)
    links.insert(0, {"href": "data/results.csv", "label": "results.csv (every row, no raw samples)"})
    return links


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
