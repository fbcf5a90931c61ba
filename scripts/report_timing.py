"""How long `bench report` takes to render 1,000 rows, how big the page is, and how soon it
is interactive in headless Chromium (the issue asks for all three).

Writes synthetic runs (two machines, four frameworks, every chart kind; see
tests/synthetic.py) to a temporary folder, renders the report from them and prints the
wall time of the render alone and the size of index.html. Then, where Chromium is
installed (driven over the DevTools protocol by tests/browser.py, so 390 px is a real
phone viewport), opens the page three times per width and prints when it became
interactive (the page stamps `data-report-interactive-ms` on <html> once its matrix,
filters and the charts in view are live: performance.now(), i.e. since navigation
started, HTML and plotly.js parsing included) and, with every chart drawn (#selftest=1),
how many charts there are and how many text overlaps the page found.

Usage: .venv/bin/python scripts/report_timing.py [ROWS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: `tests` is a package

from bench.report import build_report  # noqa: E402
from tests.browser import Chromium, find_chromium  # noqa: E402
from tests.synthetic import write_synthetic  # noqa: E402

def main(n_rows: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(Path(tmp) / "results", n_rows)
        start = time.perf_counter()
        index = build_report([Path(tmp) / "results"], Path(tmp) / "report")
        elapsed = time.perf_counter() - start
        size = index.stat().st_size
        print(f"rendered {n_rows} rows from {len(files)} files in {elapsed:.2f} s: index.html {size / 1e6:.2f} MB "
              f"(plotly.js 1.50 MB of it); load average {os.getloadavg()[0]:.1f}")
        binary = find_chromium()
        if binary is None:
            print("chromium not installed: no browser timing")
            return
        url = index.resolve().as_uri()
        with Chromium(binary) as browser:
            for width in (1400, 390):
                times = []
                for _ in range(3):
                    page = browser.page(width, 900)
                    times.append(int(page.open(url, "document.documentElement.dataset.reportInteractiveMs")))
                    marks = json.loads(page.evaluate("document.documentElement.dataset.reportMarks"))
                    page.send("Page.close")
                page = browser.page(width, 900)
                result = json.loads(page.open(url + "#selftest=1", "document.documentElement.dataset.reportOverlaps && "
                                              "document.getElementById('selftest').textContent"))
                print(f"{width} px: interactive after {statistics.median(times)} ms (median of {times}; last load's "
                      f"marks {marks}); every chart drawn: {result['drawn']}/{result['charts']} charts, "
                      f"{len(result['overlaps'])} text overlaps, console problems {len(page.console_problems())}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
