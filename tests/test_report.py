"""The HTML report: structure from a synthetic fixture, the CLI, the server, and a real
headless Chromium that must render every chart with no console errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.cli import main
from bench.report import build_report, start_server
from bench.report.demo import MACHINES, write_synthetic
from bench.report.style import FRAMEWORK_COLOURS

WORKLOAD_CHARTS = {"throughput", "speedup", "scaling", "latency", "memory"}


class Page(HTMLParser):
    """Just enough of the DOM for assertions: ids, figures, matrix cells, table rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.figures: list[dict[str, str]] = []
        self.cells: list[dict[str, str]] = []
        self.table_rows: list[dict[str, str]] = []
        self.svgs = 0
        self._in_rows_table = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "figure" and "chart" in a.get("class", ""):
            self.figures.append(a)
        if tag == "svg":
            self.svgs += 1
        if tag == "td" and "cell" in a.get("class", "").split():
            self.cells.append(a)
        if tag == "table":
            self._in_rows_table = a.get("id") == "all-rows"
        if tag == "tr" and self._in_rows_table and "data-status" in a:
            self.table_rows.append(a)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("results")
    write_synthetic(directory)
    return directory


@pytest.fixture(scope="module")
def report(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report([results_dir], tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def rows(results_dir: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(results_dir.glob("*.parquet"))], ignore_index=True)


@pytest.fixture(scope="module")
def page(report: Path) -> Page:
    return Page(report.read_text())


def test_report_has_every_section(page: Page, rows: pd.DataFrame) -> None:
    expected = {"headline", "support", "winners", "roofline", "training", "rows", "data"}
    expected |= {f"w-{w.replace('_', '-')}" for w in rows["workload"].unique()}
    assert expected <= page.ids


def test_headline_names_both_machines_and_framework_versions(report: Path) -> None:
    html = report.read_text()
    for m in MACHINES:
        assert m.machine in html
    assert "tensorflow 2.19.1" in html and "mlx 0.29.3" in html


def test_support_matrix_has_a_cell_per_machine_framework_workload(page: Page, rows: pd.DataFrame) -> None:
    n = rows["machine"].nunique() * rows["framework"].nunique() * rows["workload"].nunique()
    assert len(page.cells) == n
    statuses = [c["data-status"] for c in page.cells]
    assert "error" in statuses  # mlx sdpa bf16 on the CPU box
    assert "partial" in statuses  # matmul: tf32 unsupported
    assert "unsupported" in statuses  # tensorflow training on the Mac
    error = next(c for c in page.cells if c["data-status"] == "error")
    assert "bf16 is not supported" in error["title"]  # the reason is on hover


def test_each_workload_gets_its_charts_and_the_page_counts_them(page: Page, rows: pd.DataFrame) -> None:
    kinds = [f["data-kind"] for f in page.figures]
    ids = {f["id"] for f in page.figures}
    for workload in ("matmul", "sdpa"):
        assert {f"chart-{workload}-{k}" for k in WORKLOAD_CHARTS} <= ids
    # stream has one size in the fixture: nothing to scale across, so no scaling chart
    assert {f"chart-stream-{k}" for k in WORKLOAD_CHARTS} - ids == {"chart-stream-scaling"}
    assert kinds.count("roofline") == 1
    assert kinds.count("loss") == 1
    assert page.svgs == len(page.figures)  # every figure holds exactly one inline SVG


def test_every_row_is_in_the_table(page: Page, rows: pd.DataFrame) -> None:
    assert len(page.table_rows) == len(rows)
    assert sum(r["data-status"] == "error" for r in page.table_rows) == (rows["status"] == "error").sum()


def test_precision_mismatch_is_shown_with_its_reason_and_never_ranked(report: Path) -> None:
    html = report.read_text()
    assert "measured bf16-class, not fp16" in html
    winners = html[html.index('id="winners"'):html.index('id="w-')]
    # tensorflow's fp16 sdpa on the CPU box ran as bf16: that group has no tensorflow entry
    assert not re.search(r"AMD EPYC / Linux x86_64</td><td>sdpa</td><td>[^<]*</td><td>fp16</td><td>queued</td>\s*"
                         r"<td><span[^>]*></span><b>tensorflow", winners)


def test_a_different_timing_kind_is_not_drawn_next_to_the_others(report: Path) -> None:
    assert "timed latency, the others queued" in report.read_text()


def test_framework_colours_are_the_same_in_every_chart(report: Path) -> None:
    html = report.read_text()
    for chart in re.findall(r'<figure class="chart" id="chart-[a-z_-]+-throughput".*?</figure>', html, re.S):
        for colour in FRAMEWORK_COLOURS.values():
            assert colour.lower() in chart.lower()


def test_data_is_offered_for_download(report: Path, rows: pd.DataFrame) -> None:
    data = report.parent / "data"
    assert len(pd.read_csv(data / "results.csv")) == len(rows)
    assert len(list(data.glob("*.parquet"))) == rows["run_id"].nunique()
    assert 'href="data/results.csv"' in report.read_text()


def test_report_has_no_network_references(report: Path) -> None:
    assert not re.search(r'(src|href)="(https?:)?//', report.read_text())


def test_without_loss_curves_the_training_section_says_so(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "results", loss_curves=False)
    html = build_report([tmp_path / "results"], tmp_path / "out").read_text()
    assert "No rows carry a loss curve" in html
    assert 'data-kind="loss"' not in html


def test_a_single_run_with_one_framework_renders(tmp_path: Path, results_dir: Path) -> None:
    table = pq.read_table(next(results_dir.glob("*cpu.parquet")))
    one = table.filter(pc.and_(pc.equal(table["framework"], "mlx"), pc.equal(table["workload"], "matmul")))
    (tmp_path / "r").mkdir()
    pq.write_table(one, tmp_path / "r" / "one.parquet")
    html = build_report([tmp_path / "r"], tmp_path / "out").read_text()
    assert 'id="w-matmul"' in html and 'data-kind="throughput"' in html
    assert 'data-kind="speedup"' not in html  # nothing to be faster than


def test_cli_report_writes_index(results_dir: Path, tmp_path: Path) -> None:
    assert main(["report", str(results_dir), "-o", str(tmp_path / "out"), "--baseline", "mlx"]) == 0
    assert "Speed-up relative to mlx" in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.parametrize("make_input", ["missing", "empty_dir", "corrupt"])
def test_cli_bad_input_is_one_line_and_exit_2(make_input: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "input.parquet"
    if make_input == "empty_dir":
        target = tmp_path / "empty"
        target.mkdir()
    elif make_input == "corrupt":
        target.write_bytes(b"not parquet")
    assert main(["report", str(target), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench report: error:") and "\n" not in err


def test_corrupt_file_inside_a_folder_is_skipped_with_a_warning(results_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "results"
    shutil.copytree(results_dir, folder)
    (folder / "broken.parquet").write_bytes(b"crashed mid-write")
    assert main(["report", str(folder), "-o", str(tmp_path / "out")]) == 0
    assert "warning: skipped" in capsys.readouterr().err


def test_server_serves_the_report_and_stops(report: Path) -> None:
    server = start_server(report.parent, port=0)
    try:
        host, port = server.server_address[:2]
        body = urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10).read().decode()
        assert 'id="support"' in body
    finally:
        server.shutdown()
        server.server_close()


def test_cli_serve_prints_its_address_and_stops_on_its_own(results_dir: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench", "report", str(results_dir), "-o", str(tmp_path / "out"),
           "--serve", "--port", "0", "--serve-seconds", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if (m := re.search(r"http://127\.0\.0\.1:\d+/", line)):
                url = m.group(0)
                break
        assert url, proc.stderr.read()  # type: ignore[union-attr]
        assert b"metalbench report" in urllib.request.urlopen(url, timeout=10).read()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# -- a real browser ---------------------------------------------------------------------------
def _chromium() -> str | None:
    """Debian's chromium; installed here if missing (as .ci/run does), else None."""
    found = shutil.which("chromium")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
            return None
    return shutil.which("chromium")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=180)


def test_chromium_renders_every_chart_without_console_errors(report: Path, tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed and could not be installed with apt-get (not root, or offline)")
    url = report.resolve().as_uri()
    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    expected = re.search(r'data-expected-charts="(\d+)"', report.read_text()).group(1)  # type: ignore[union-attr]
    root = re.search(r"<html[^>]*>", dom.stdout)
    assert root, dom.stderr[-2000:]
    assert 'data-report-rendered="ok"' in root.group(0)
    assert f'data-report-charts="{expected}"' in root.group(0)
    assert "data-report-errors" not in root.group(0)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page logs nothing; anything here is an error or an uncaught exception

    shot = tmp_path / "report.png"
    _run_chromium(binary, tmp_path / "profile-shot", "--window-size=1400,2400", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 50_000
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] == 2400 and pixels.std() > 0.05  # not a blank page
    if os.environ.get("REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])
