"""How long `bench report` takes to render ROWS rows, how big the page is, how soon it is
interactive, how soon every chart is drawn, and how long sorting the table takes, in
headless Chromium driven by Playwright (tests/chromium.py: Debian's browser).

Writes synthetic runs (two machines, four frameworks, every chart kind, repeated runs of
each machine until ROWS rows; see tests/synthetic.py) to a temporary folder and renders
the report from them. Then, per width (1400 px and a 390 px phone), it opens the page
LOADS times in fresh offline contexts and reads the page's own stamps on <html>
(performance.now(), i.e. since navigation started, HTML and plotly.js parsing included):

* interactive: the matrix, filters and the charts in view are live;
* every chart: with `#selftest=1` the page draws every chart it has (the drill-in of one
  case included) and stamps when the last one is done, with its text-overlap and
  stacked-bar checks;
* first paint: the browser's first-contentful-paint entry;
* sort: one click on the table's "median" header, timed in the page around the click
  (the sort is synchronous) plus the layout it forces;
* filter: choosing the second dtype in the header's filter (every section re-rendered),
  and case: opening the first matrix case's drill-in, each timed the same way (the charts
  they add are drawn after, as they scroll into view).

Prints one table, medians with [min–max]. Usage:
    .venv/bin/python scripts/report_timing.py [ROWS] [--loads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: `tests` is a package

from bench.report import build_report  # noqa: E402
from tests.chromium import context_args, find_chromium, launch_args  # noqa: E402
from tests.synthetic import write_synthetic  # noqa: E402

STAMP = "document.documentElement.dataset"
SORT = """(function () {
  const th = Array.from(document.querySelectorAll('#all-rows thead th')).find(function (h) { return h.textContent === 'median'; });
  const start = performance.now(); th.click(); void document.body.offsetHeight;
  return performance.now() - start; })()"""


FIRST_PAINT = "(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime"
FILTER = """(function () {
  const s = document.querySelector('#filters select[name=dtype]');
  if (!s || s.options.length < 3) return NaN;
  const start = performance.now(); s.value = s.options[2].value; s.dispatchEvent(new Event('change'));
  void document.body.offsetHeight; return performance.now() - start; })()"""
OPEN_CASE = """(function () {
  const b = document.querySelector('#matrix button[data-group]');
  if (!b) return NaN;
  const start = performance.now(); b.click(); void document.body.offsetHeight;
  return performance.now() - start; })()"""


def spread(values: list[float], unit: str = "ms") -> str:
    values = [v for v in values if v == v]  # NaN: the page had nothing to time (e.g. one dtype only)
    if not values:
        return "—"
    return f"{statistics.median(values):,.0f} {unit} [{min(values):,.0f}–{max(values):,.0f}]"


def measure(browser, url: str, width: int, loads: int) -> dict[str, object]:
    interactive, drawn, sorts, problems, paints, filters, cases, checks = [], [], [], [], [], [], [], []
    charts = overlaps = stacked = 0
    for _ in range(loads):
        context = browser.new_context(**context_args(width))
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url, timeout=300_000)
        page.wait_for_function(f"{STAMP}.reportInteractiveMs", timeout=300_000)
        interactive.append(float(page.evaluate(f"{STAMP}.reportInteractiveMs")))
        page.wait_for_function("document.querySelectorAll('#all-rows tbody tr').length > 0", timeout=300_000)
        sorts.append(float(page.evaluate(SORT)))
        paints.append(float(page.evaluate(FIRST_PAINT)))
        cases.append(float(page.evaluate(OPEN_CASE)))
        filters.append(float(page.evaluate(FILTER)))
        context.close()
        context = browser.new_context(**context_args(width))
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + "#selftest=1", timeout=300_000)
        page.wait_for_function(f"{STAMP}.reportOverlaps && document.getElementById('selftest').textContent", timeout=300_000)
        drawn.append(float(page.evaluate(f"{STAMP}.reportSelftestMs")))  # stamped when the last chart is drawn
        checks.append(float(page.evaluate(f"{STAMP}.reportChecksMs")))  # the self-test's layout checks after it
        result = json.loads(page.evaluate("document.getElementById('selftest').textContent"))
        charts, overlaps, stacked = result["drawn"], len(result["overlaps"]) + len(result["clipped"]), len(result["stacked"])
        context.close()
    return {"width": width, "interactive": interactive, "drawn": drawn, "sorts": sorts, "paint": paints, "filter": filters,
            "case": cases, "charts": charts, "checks": checks,
            "overlaps": overlaps, "stacked": stacked, "problems": len(problems)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1355, help="synthetic rows (default 1355)")
    parser.add_argument("--loads", type=int, default=3, help="page loads per width and measure (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(Path(tmp) / "results", args.rows)
        start = time.perf_counter()
        index = build_report([Path(tmp) / "results"], Path(tmp) / "report")
        elapsed = time.perf_counter() - start
        print(f"rendered {args.rows} rows from {len(files)} files in {elapsed:.2f} s: index.html "
              f"{index.stat().st_size / 1e6:.2f} MB (plotly.js 1.50 MB of it); load average {os.getloadavg()[0]:.1f}")
        binary = find_chromium()
        if binary is None:
            print("chromium not installed (apt-get install chromium): no browser timing")
            return
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(**launch_args(binary))
            results = [measure(browser, index.resolve().as_uri(), width, args.loads) for width in (1400, 390)]
            browser.close()
    print("\n| width | first paint | interactive | every chart drawn | charts | overlaps | stacked bars | sort by median "
          "| dtype filter | open a case | console |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['width']} px | {spread(r['paint'])} | {spread(r['interactive'])} | {spread(r['drawn'])} | {r['charts']} "
              f"| {r['overlaps']} | {r['stacked']} | {spread(r['sorts'])} | {spread(r['filter'])} | {spread(r['case'])} "
              f"| {r['problems']} |")
    for r in results:
        print(f"{r['width']} px: the self-test's layout checks after the last chart: {spread(r['checks'])} (not in 'every chart drawn')")
    print(f"\n{args.loads} loads per cell; times since navigation start (sort: in the page, around the click). "
          f"Load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
