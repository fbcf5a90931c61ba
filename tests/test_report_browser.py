"""The report in a real browser: Debian's headless Chromium driven by Playwright
(pytest-playwright's fixtures; tests/chromium.py says why the system browser), at 1400 px
and as a 390 px phone, on a results folder with several runs per machine.

The fixture is every machine's synthetic run written three times under new run ids, each
case measured by three processes, the newest copy of torch's matmul cases 1.5× slower. The
page must draw every chart with no console message, no failed request and no overlapping
text; hold at most one bar per framework and run in any category; give every comparable row
of every machine its ★ exactly as a report of that run alone does; name the slowed cases,
and no others, in its changes section; and carry every reason as text in the DOM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("playwright", reason="the dev extra installs playwright and pytest-playwright")

from bench.report import build_report  # noqa: E402
from tests.chromium import context_args, find_chromium, launch_args  # noqa: E402
from tests.synthetic import HOSTILE, write_runs  # noqa: E402
from tests.test_report import page_data  # noqa: E402

SELFTEST_DONE = "document.documentElement.dataset.reportOverlaps && document.getElementById('selftest').textContent"
INTERACTIVE = "document.documentElement.dataset.reportInteractiveMs || document.documentElement.dataset.reportErrors"
WIDTHS = (1400, 390)


def slowed(row: dict[str, Any]) -> bool:
    return row["framework"] == "torch" and row["workload"] == "matmul"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches the system Chromium (Playwright's own download is unreachable)."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    return {**browser_type_launch_args, **launch_args(binary)}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    write_runs(directory, copies=3, processes=3, slowed={2: (1.5, slowed)})
    return directory


@pytest.fixture(scope="module")
def report(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report([runs_dir], tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def alone(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the newest run of each machine alone: what its ★ must be."""
    return build_report(sorted(runs_dir.glob("*-copy2.parquet")), tmp_path_factory.mktemp("alone"))


Opener = Callable[..., Any]


@pytest.fixture
def open_page(browser: Any) -> Iterator[Opener]:
    """open_page(url, width, wait) → a page in a fresh offline context, with `page.problems`:
    every console message, page error and request other than the page's own file."""
    contexts = []

    def opener(url: str, width: int, wait: str = INTERACTIVE, height: int = 900) -> Any:
        context = browser.new_context(**context_args(width, height))
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        page.on("request", lambda r: None if r.url.startswith("file://") else problems.append(f"request: {r.url}"))
        page.problems = problems
        page.goto(url)
        page.wait_for_function(wait, timeout=240_000)
        return page

    yield opener
    for context in contexts:
        context.close()


def screenshot_dir() -> Path | None:
    folder = os.environ.get("REPORT_SCREENSHOT_DIR")
    return Path(folder) if folder else None


BAR_CATEGORIES = """Array.from(document.querySelectorAll('.plot')).flatMap(function (p) {
  return (p.data || []).filter(function (t) { return t.type === 'bar'; }).map(function (t) {
    const cats = t.orientation === 'h' ? t.y : t.x;
    return { chart: p.closest('figure').querySelector('figcaption b').textContent, trace: t.name,
             bars: cats.length, categories: new Set(cats).size,
             labelled: (t.text || []).filter(function (x) { return x !== ''; }).length,
             finite: t[t.orientation === 'h' ? 'x' : 'y'].filter(function (v) { return typeof v === 'number' && isFinite(v); }).length };
  });
})"""


@pytest.mark.parametrize("width", WIDTHS)
def test_every_chart_is_drawn_with_one_bar_per_framework_and_run_per_category(open_page: Opener, report: Path,
                                                                              width: int) -> None:
    page = open_page(report.resolve().as_uri() + "#selftest=1", width, SELFTEST_DONE)
    attrs = page.evaluate("Object.assign({}, document.documentElement.dataset)")
    result = json.loads(page.evaluate("document.getElementById('selftest').textContent"))
    assert "reportErrors" not in attrs, attrs.get("reportLastError")
    assert page.problems == []  # no console message, no page error, no request beyond the file itself
    assert attrs["reportRendered"] == "ok" and result["drawn"] == result["charts"] > 20
    assert result["overlaps"] == [] and result["stacked"] == [] and result["clipped"] == []
    assert {"measure", "samples", "memory", "standing", "machines", "roofline", "loss", "timings", "first-call",
            "queue-curve", "history"} <= set(result["kinds"])
    assert result["width"] == width
    bars = page.evaluate(BAR_CATEGORIES)
    assert len(bars) > 40
    for trace in bars:  # one trace per framework; a category holding two of its bars would stack them
        assert trace["bars"] == trace["categories"], trace
    measures = [t for t in bars if "(" in t["chart"] and "memory" not in t["chart"].lower()]
    assert all(t["labelled"] == t["finite"] for t in measures)  # each bar's value printed beside it


def _matrix(page: Any) -> list[list[Any]]:
    return page.evaluate("""Array.from(document.querySelectorAll('#matrix .machine-block')).flatMap(function (b) {
      const machine = b.querySelector('h3').firstChild.textContent;
      return Array.from(b.querySelectorAll('table.matrix')).flatMap(function (t) {
        const fws = Array.from(t.tHead.rows[0].cells).slice(1).map(function (th) { return th.textContent; });
        return Array.from(t.tBodies[0].rows).map(function (tr) {
          const cells = Array.from(tr.cells).slice(1);
          return [machine, t.dataset.workload, tr.cells[0].textContent,
                  cells.some(function (td) { return td.classList.contains('c-ok'); }),
                  cells.map(function (td, i) { return td.classList.contains('best') ? fws[i] : null; }).filter(Boolean)];
        });
      });
    })""")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_comparable_row_has_its_star_as_with_a_single_run(open_page: Opener, report: Path, alone: Path,
                                                               width: int) -> None:
    several = _matrix(open_page(report.resolve().as_uri(), width))
    single = _matrix(open_page(alone.resolve().as_uri(), width))
    assert several == single
    comparable = [row for row in several if row[3]]
    assert len(comparable) > 40 and all(len(row[4]) == 1 for row in comparable)  # one ★ in every comparable row
    assert len({row[0] for row in several}) == 2  # both machines


@pytest.mark.parametrize("width", WIDTHS)
def test_changes_name_the_slowed_cases_and_no_others(open_page: Opener, report: Path, width: int, tmp_path: Path) -> None:
    page = open_page(report.resolve().as_uri(), width)
    data = page_data(report.read_text())
    newest = {runs[-1]["id"] for runs in data["runs"].values()}
    expected = {(r["machine"], r["params"], r["dtype"]) for r in data["records"]
                if r["run"] in newest and slowed(r) and r["status"] == "ok"}
    named = page.evaluate("""Array.from(document.querySelectorAll('#changes table.changes tbody tr')).map(function (tr) {
      const d = tr.dataset;
      return [tr.closest('.change-block').dataset.machine, d.verdict, d.framework, d.workload, d.params, d.dtype];
    })""")
    assert {tuple(n[1:4]) for n in named} == {("slower", "torch", "matmul")}
    assert {(n[0], n[4], n[5]) for n in named} == expected and len(named) == len(expected)
    headline = page.locator("#changes .gate-headline").first.text_content()
    assert headline.startswith("bench compare's verdict: FAIL:") and "slower" in headline
    # the ratio beside the verdict, on screen without scrolling sideways (on a phone too)
    text, right = page.evaluate("""(function () { const th = document.querySelector('#changes table.changes thead th:nth-child(2)');
      return [th.textContent, th.getBoundingClientRect().right]; })()""")
    assert text.startswith("after ÷ before") and right <= width
    if screenshot_dir():
        page.locator("#changes").screenshot(path=str(screenshot_dir() / f"report-changes-{width}.png"))


@pytest.mark.parametrize("width", WIDTHS)
def test_reasons_are_text_in_the_page(open_page: Opener, report: Path, width: int) -> None:
    page = open_page(report.resolve().as_uri(), width)
    data = page_data(report.read_text())
    newest = {runs[-1]["id"] for runs in data["runs"].values()}
    failed = [r for r in data["records"] if r["run"] in newest and r["status"] != "ok"]
    reasons = page.evaluate("Array.from(document.querySelectorAll('#failures td.reason')).map(function (td) { return td.textContent; })")
    assert sorted(reasons) == sorted(r["reason"] for r in failed)  # every failure of the runs shown, as text
    assert any(HOSTILE in text for text in reasons)  # file-supplied text shown literally, not parsed
    cell_reasons = page.evaluate("""Array.from(document.querySelectorAll('#matrix td.cell:not(.c-ok):not(.c-none)'))
      .map(function (td) { const s = td.querySelector('small.reason'); return s ? s.textContent : ''; })""")
    assert cell_reasons and all(cell_reasons)
    # the headline's status counts are the way in
    link = page.locator("#status-counts a[href='#failures-unsupported']")
    assert link.count() == 1
    link.click()
    page.wait_for_function("(function () { const b = document.getElementById('failures-unsupported').getBoundingClientRect();"
                           " return b.top >= 0 && b.top < window.innerHeight; })()", timeout=10_000)


def test_phone_keeps_navigation_and_filters_and_the_case_column(open_page: Opener, report: Path) -> None:
    page = open_page(report.resolve().as_uri(), 390, height=844)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.evaluate("window.scrollTo(0, 6000)")
    for selector in ("#nav a[href='#answer']", "#filters select[name=dtype]"):
        box = page.locator(selector).bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= 844, selector  # still on screen
    assert page.locator("#nav a").count() > 8
    overflowing = page.evaluate("""Array.from(document.querySelectorAll('#matrix .table-wrap')).filter(function (w) {
      return w.scrollWidth > w.clientWidth + 1; }).length""")
    wrap = page.locator("#matrix .table-wrap").first
    wrap.scroll_into_view_if_needed()
    if overflowing:  # a matrix wider than the phone scrolls, its case column stays
        shift = page.evaluate("""(function () { const w = Array.from(document.querySelectorAll('#matrix .table-wrap'))
          .find(function (w) { return w.scrollWidth > w.clientWidth + 1; });
          w.scrollLeft = 200; const th = w.querySelector('th.case');
          return th.getBoundingClientRect().left - w.getBoundingClientRect().left; })()""")
        assert abs(shift) <= 2
    page.locator("#nav a[href='#failures']").click()
    page.wait_for_function("(function () { const b = document.getElementById('failures').getBoundingClientRect();"
                           " return b.top >= 0 && b.top < window.innerHeight; })()", timeout=10_000)
    if screenshot_dir():
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshot_dir() / "report-phone-top.png"))
        page.evaluate("document.getElementById('answer').scrollIntoView(); window.scrollBy(0, -120)")
        page.screenshot(path=str(screenshot_dir() / "report-phone-matrix.png"))
        page.evaluate("document.getElementById('changes').scrollIntoView(); window.scrollBy(0, -120)")
        page.screenshot(path=str(screenshot_dir() / "report-phone-changes.png"))
    assert page.problems == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_drill_in_shows_the_note_on_screen_and_wraps_the_checks(open_page: Opener, report: Path, width: int) -> None:
    page = open_page(report.resolve().as_uri(), width)
    page.locator("#matrix td.c-unsupported button").first.click()
    page.wait_for_function("!document.getElementById('detail').hidden && location.hash.startsWith('#case=')")
    page.locator("#matrix td.c-ok button").first.click()
    page.wait_for_function("document.querySelectorAll('#detail .plot[data-rendered]').length >= 2", timeout=60_000)
    geometry = page.evaluate("""(function () {
      const wrap = document.querySelector('#detail .table-wrap'); const box = wrap.getBoundingClientRect();
      const note = document.querySelector('#detail td.col-note').getBoundingClientRect();
      const checks = Array.from(document.querySelectorAll('#detail td.col-checks')).map(function (td) { return td.getBoundingClientRect().width; });
      return { noteLeft: note.left - box.left, boxWidth: box.width, checks: Math.max.apply(null, checks) }; })()""")
    assert geometry["noteLeft"] < geometry["boxWidth"] / 2  # the reason is in view without scrolling sideways
    assert geometry["checks"] < 400  # the checks' prose wraps
    assert page.problems == []


def test_the_run_selector_shows_another_run_and_its_changes(open_page: Opener, report: Path) -> None:
    data = page_data(report.read_text())
    machine = sorted(data["runs"])[0]
    first, middle, newest = (r["id"] for r in data["runs"][machine])
    page = open_page(report.resolve().as_uri() + "#run=" + middle, 1400)
    headings = page.evaluate("Array.from(document.querySelectorAll('#matrix .machine-block h3')).map(function (h) { return h.textContent; })")
    assert any(machine in h and middle in h for h in headings)
    other = next(m for m in data["runs"] if m != machine)
    assert any(data["runs"][other][-1]["id"] in h for h in headings if machine not in h)  # the other stays at its newest
    assert not any(newest in h for h in headings)
    block = page.locator(f"#changes .change-block[data-machine='{machine}']")
    assert block.get_attribute("data-pair") == f"{first}|{middle}"  # its changes: that run against the one before
    assert page.locator(f"#changes .change-block[data-machine='{machine}'] table.changes").count() == 0  # identical copies
    assert page.problems == []


def test_the_view_is_in_the_address(open_page: Opener, report: Path) -> None:
    url = report.resolve().as_uri()
    everything = json.loads(open_page(url + "#selftest=1", 1400, SELFTEST_DONE).evaluate(
        "document.getElementById('selftest').textContent"))
    machine = sorted(page_data(report.read_text())["runs"])[0]
    from urllib.parse import quote
    page = open_page(url + f"#machine={quote(machine)}&dtype=fp16&mode=eager&timing=queued&selftest=1", 1400, SELFTEST_DONE)
    narrowed = json.loads(page.evaluate("document.getElementById('selftest').textContent"))
    assert narrowed["overlaps"] == [] and page.problems == []
    assert narrowed["state"] | {"case": ""} == {"machine": machine, "dtype": "fp16", "mode": "eager", "timing": "queued", "case": ""}
    assert 0 < narrowed["matrixCells"] < everything["matrixCells"]
    assert 0 < narrowed["tableShown"] < narrowed["tableRows"]


def test_a_click_on_a_cell_opens_its_case_and_puts_it_in_the_address(open_page: Opener, report: Path) -> None:
    page = open_page(report.resolve().as_uri(), 1400)
    button = page.locator("#matrix td.c-ok button").first
    group = button.get_attribute("data-group")
    button.click()
    page.wait_for_function("!document.getElementById('detail').hidden")
    assert page.evaluate("location.hash") == f"#case={group}"
    page.wait_for_function("document.querySelectorAll('#detail .plot[data-rendered]').length >= 2", timeout=60_000)
    assert page.problems == []


def test_best_available_shows_each_framework_at_its_fastest_mode_named(open_page: Opener, report: Path) -> None:
    page = open_page(report.resolve().as_uri() + "#mode=best", 1400)
    cells = page.evaluate("Array.from(document.querySelectorAll('#matrix table[data-workload=train_step] td.c-ok'))"
                          ".map(function (td) { return td.querySelector('small.mode').textContent; })")
    lines = page.evaluate("document.querySelectorAll('#matrix table[data-workload=train_step] tbody tr').length")
    assert set(cells) == {"eager", "compiled"}
    assert lines == 2  # one line per machine's case (its newest run), not one per mode or run
    assert page.problems == []


def test_an_older_step_not_compared_names_the_command_that_judges_it(open_page: Opener, runs_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the newest steps are compared when the page is built (bench.report.changes); a run
    picked further back gets the `bench compare` command for its step, with its files."""
    import bench.report.changes as changes

    monkeypatch.setattr(changes, "RECENT_STEPS", 1)
    report = build_report([runs_dir], tmp_path / "report")
    data = page_data(report.read_text())
    machine = sorted(data["runs"])[0]
    first, middle, newest = data["runs"][machine]
    page = open_page(report.resolve().as_uri() + "#run=" + middle["id"], 1400)
    block = page.locator(f"#changes .change-block[data-machine='{machine}']")
    assert block.get_attribute("data-pair") == f"{middle['id']}|{newest['id']}"  # the one step compared
    assert block.locator(".older-steps code").text_content() == f"bench compare {first['file']} {middle['file']}"
    assert page.problems == []
