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
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bench import journal, safe_write
from bench.fmt import csv_safe
from bench.paths import current_umask, output_dir_problem
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
    opens in a spreadsheet. Staged, then swapped in (see `stage_data` and `swap_in`).
    """
    staging, links = stage_data(rows, sources, data_dir)
    try:
        swap_in(staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return links


def stage_data(rows: pd.DataFrame, sources: Iterable[str], data_dir: Path) -> tuple[Path, list[dict[str, str]]]:
    """The new data/ complete in a hidden folder beside it, with its manifest (so the next
    report knows bench wrote every file in it). A full disk fails here, before anything of
    the old report is touched, and leaves no staging folder behind."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir=data_dir.parent))
    try:
        staging.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the downloads from a web server
        links = _fill_data(rows, sources, staging)
        safe_write.write_manifest(staging, {p.name: safe_write.sha256_file(p) for p in staging.iterdir()})
    except OSError as exc:  # a full disk: say which folder could not be written
        shutil.rmtree(staging, ignore_errors=True)
        raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(data_dir)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, links


def copy_name(src: Path, used: set[str]) -> str:
    """A name in data/ no other copy has: the file's own, then with its folder's name, then
    numbered. Three inputs called x.parquet once left two copies (the third overwrote one),
    and re-rendering from data/ silently lost a run."""
    for name in (src.name, f"{src.parent.name}-{src.name}" if src.parent.name else src.name):
        if name not in used and name not in RESERVED:
            return name
    n = 2
    while (name := f"{src.stem}-{n}{src.suffix}") in used:
        n += 1
    return name


RESERVED = frozenset({"results.csv", safe_write.MANIFEST})


def _fill_data(rows: pd.DataFrame, sources: Iterable[str], data_dir: Path) -> list[dict[str, str]]:
    links = []
    used: set[str] = set()
    for src in dict.fromkeys(sources):
        src_path = Path(src)
        name = copy_name(src_path, used)
        used.add(name)
        shutil.copy2(src_path, data_dir / name)
        if journal.path_for(src_path).is_file():  # a run that crashed: the rows its file lacks (bench.journal)
            shutil.copy2(journal.path_for(src_path), journal.path_for(data_dir / name))
        links.append({"href": f"data/{name}", "label": name})
    flat = rows.drop(columns=[c for c in rows.columns if c.endswith("samples_s") or c == "metrics_dict"])
    flat.map(csv_safe).to_csv(data_dir / "results.csv", index=False)  # a "=HYPERLINK(…)" stays text
    links.insert(0, {"href": "data/results.csv", "label": "results.csv (every row, no raw samples)"})
    return links


def legacy_data(folder: Path) -> bool:
    """A data/ an older bench wrote (before the manifest): beside a bench report's index.html,
    holding nothing but results.csv and parquet copies."""
    names = [p for p in folder.iterdir()]
    return (is_bench_page(folder.parent / "index.html") and any(p.name == "results.csv" for p in names)
            and all(p.is_file() and not p.is_symlink() and (p.name == "results.csv" or p.suffix == ".parquet")
                    for p in names))


def is_bench_page(path: Path) -> bool:
    """An index.html a bench report wrote (its generator tag), e.g. before the manifest existed."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return GENERATOR_TAG in fh.read(4096)


GENERATOR_TAG = b'<meta name="generator" content="metalbench report">'


def swap_in(staging: Path, data_dir: Path) -> None:
    """Put the new data/ in place of the old one only once it is complete. The inputs may
    live in the old data/ (`bench report reports/data` re-renders a report from its own
    copies, as the README suggests): they were copied into `staging` first, so replacing
    the old folder loses nothing. A data/ bench did not write (safe_write.folder_problem)
    is refused, never replaced: `-o` a project folder once deleted its data/."""
    why = safe_write.folder_problem(data_dir, replaceable=legacy_data)
    if why:
        raise ReportError(why)
    old = None
    if data_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=".data-old-", dir=data_dir.parent))
        data_dir.rename(old / "data")
    try:
        staging.rename(data_dir)
    except OSError:
        if old is not None:
            (old / "data").rename(data_dir)  # put the old one back: the page still links to it
        raise
    if old is not None:
        shutil.rmtree(old)  # bench's own copies from an earlier report: stale ones would mislead


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


def output_problem(out_dir: Path) -> str | None:
    """Why the report cannot go to `out_dir`, asked before the charts are drawn: unwritable,
    a file, or an index.html or data/ there that bench did not write."""
    problem = output_dir_problem(out_dir)
    if problem is None and out_dir.exists() and not out_dir.is_dir():
        problem = f"cannot write the report to {out_dir}: it is a file"
    if problem is None:
        problem = safe_write.problem(out_dir / "index.html", replaceable=is_bench_page)
    if problem is None and (out_dir / "data").exists():
        problem = safe_write.folder_problem(out_dir / "data", replaceable=legacy_data)
    return problem


def build_report(paths: Iterable[Path | str], out_dir: Path | str, warn: Warn = lambda message: None) -> Path:
    """Render the report of every results file under `paths` into `out_dir`/index.html.

    Nothing of an earlier report is touched until the new one is complete: data/ is staged
    and the page rendered first, then data/ is swapped in and the page renamed over the old
    one. A full disk on the way leaves the old report as it was and nothing half-written
    (it once left a new data/ beside the old page, and a partial hidden page)."""
    out_dir = Path(out_dir)
    problem = output_problem(out_dir)
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
    }
    staging, context["downloads"] = stage_data(rows.drop(columns=list(DERIVED_LISTS)), rows["source"], out_dir / "data")
    index = out_dir / "index.html"
    try:
        page = render(context).encode("utf-8")
        safe_write.check(index, replaceable=is_bench_page)  # again: it may have appeared while the charts were drawn
        # a browser reloading mid-build never sees half a page, nor the new page with the old data/
        safe_write.atomic_bytes(index, page, before_replace=lambda: swap_in(staging, out_dir / "data"))
        safe_write.record(index)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return index
