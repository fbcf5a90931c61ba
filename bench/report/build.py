"""Render the report: results files in, one self-contained `index.html` (plus its data) out.

The page embeds its data (JSON), its charting library (plotly.js, once), styles and
script inline, so it opens from disk or a mail attachment with no network and nothing
beside it. Next to it, `data/` holds copies of the parquet files it was built from and
one CSV of every row, for the download links.

plotly.js is vendored (bench/report/static/vendor/, MIT): the official "cartesian"
partial bundle of plotly.js 4.1.1 — bar, box, violin, scatter, heatmap — is 1.5 MB
where the full bundle the `plotly` Python package ships is 4.8 MB, and the report needs
nothing outside cartesian charts.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench.report import sections
from bench.report.data import Warn, comparable, load, prepare
from bench.report.payload import build_payload, embed
from bench.report.style import palette

HERE = Path(__file__).resolve().parent
PLOTLY = HERE / "static" / "vendor" / "plotly-cartesian-4.1.1.min.js"
DERIVED_LISTS = ("device_samples", "queue_curve")  # list columns `prepare` adds: not spreadsheet cells
PREFERRED_BASELINES = ("torch",)  # the framework most readers already know the speed of


class ReportError(ValueError):
    """The report cannot be built as asked (e.g. a baseline with no rows); the message says why."""


def choose_baseline(rows: pd.DataFrame, requested: str | None) -> str:
    """The framework speed-ups are shown against in the drill-in (`--baseline`)."""
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


def _inline_script(text: str) -> str:
    """Script text that cannot end its <script> element early."""
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def render(context: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html.j2").render(
        **context, css=_static("report.css"), js=_inline_script(_static("report.js")),
        plotly_js=_inline_script(PLOTLY.read_text(encoding="utf-8")))


def build_report(paths: Iterable[Path | str], out_dir: Path | str, baseline: str | None = None,
                 warn: Warn = lambda message: None) -> Path:
    """Render the report of every results file under `paths` into `out_dir`/index.html."""
    out_dir = Path(out_dir)
    rows = prepare(load(paths, warn))
    colours = palette(rows["framework"])
    baseline = choose_baseline(rows, baseline)
    payload = build_payload(rows, colours)
    payload["baseline"] = baseline
    out_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": sections.headline(rows),
        "colours": colours,
        "baseline": baseline,
        "support": sections.support_matrix(rows),
        "workloads": payload["workloads"],
        "data_json": embed(payload),
        "downloads": write_data(rows.drop(columns=list(DERIVED_LISTS)), rows["source"], out_dir / "data"),
    }
    index = out_dir / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(render(context), encoding="utf-8")
    tmp.replace(index)  # a browser reloading mid-build never sees half a page
    return index
