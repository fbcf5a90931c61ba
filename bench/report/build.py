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

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench.fmt import csv_safe
from bench.paths import output_dir_problem
from bench.report import sections
from bench.report.changes import changes_view
from bench.report.data import Warn, load, prepare
from bench.report.payload import build_payload, embed
from bench.report.runs import runs_view
from bench.report.style import palette

HERE = Path(__file__).resolve().parent
PLOTLY = HERE / "static" / "vendor" / "plotly-cartesian-4.1.1.min.js"
DERIVED_LISTS = ("device_samples", "queue_curve")  # list columns `prepare` adds: not spreadsheet cells


class ReportError(ValueError):
    """The report cannot be built as asked (e.g. an output folder that is a file); the message says why."""


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


def _inline_script(text: str) -> str:
    """Script text that cannot end its <script> element early."""
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def render(context: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html.j2").render(
        **context, css=_static("report.css"), js=_inline_script(_static("report.js")),
        plotly_js=_inline_script(PLOTLY.read_text(encoding="utf-8")))


def build_report(paths: Iterable[Path | str], out_dir: Path | str, warn: Warn = lambda message: None) -> Path:
    """Render the report of every results file under `paths` into `out_dir`/index.html."""
    out_dir = Path(out_dir)
    problem = output_dir_problem(out_dir)  # before the charts are drawn, not after
    if problem is None and out_dir.exists() and not out_dir.is_dir():
        problem = f"cannot write the report to {out_dir}: it is a file"
    if problem:
        raise ReportError(problem)
    loaded = load(paths, warn)
    rows = prepare(loaded)
    colours = palette(rows["framework"])
    payload = build_payload(rows, colours)
    payload["runs"] = runs_view(loaded)
    payload["changes"] = changes_view(loaded)  # the gate's verdicts, on every process's row
    out_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": sections.headline(rows),
        "colours": colours,
        "support": sections.support_matrix(rows),
        "runs": payload["runs"],
        "workloads": payload["workloads"],
        "data_json": embed(payload),
        "downloads": write_data(rows.drop(columns=list(DERIVED_LISTS)), rows["source"], out_dir / "data"),
    }
    index = out_dir / "index.html"
    tmp = index.with_name(".index.html.tmp")
    tmp.write_text(render(context), encoding="utf-8")
    tmp.replace(index)  # a browser reloading mid-build never sees half a page
    return index
