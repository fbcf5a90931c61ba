"""How long `bench report` takes to render 1,000 rows, how big the page is, and how soon it
is interactive in headless Chromium (the issue asks for all three).

Writes synthetic runs (two machines, four frameworks, every chart kind; see
tests/synthetic.py) to a temporary folder, renders the report from them and prints the
wall time of the render alone and the size of index.html. Then, where Chromium is
installed, opens the page three times and prints when it became interactive (the page
stamps `data-report-interactive-ms` on <html> once its matrix, filters and the charts in
view are live: performance.now(), i.e. since navigation started) and, with every chart
drawn (#selftest=1), how many charts there are and how many text overlaps the page found.

Usage: .venv/bin/python scripts/report_timing.py [ROWS]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from html import unescape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: `tests` is a package

from bench.report import build_report  # noqa: E402
from tests.synthetic import write_synthetic  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def dump(binary: str, profile: Path, url: str, width: int, budget_ms: int | None = None) -> str:
    args = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"]
    if budget_ms:
        args.append(f"--virtual-time-budget={budget_ms}")
    return subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=300).stdout


def html_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<html[^>]*>", dom)
    return {k: unescape(v) for k, v in re.findall(r'data-report-([a-z-]+)="([^"]*)"', tag.group(0))} if tag else {}


def main(n_rows: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(Path(tmp) / "results", n_rows)
        start = time.perf_counter()
        index = build_report([Path(tmp) / "results"], Path(tmp) / "report")
        elapsed = time.perf_counter() - start
        size = index.stat().st_size
        print(f"rendered {n_rows} rows from {len(files)} files in {elapsed:.2f} s: index.html {size / 1e6:.2f} MB "
              f"(plotly.js 1.50 MB of it); load average {os.getloadavg()[0]:.1f}")
        binary = shutil.which("chromium")
        if binary is None:
            print("chromium not installed: no browser timing")
            return
        url = index.resolve().as_uri()
        for width in (1400, 390):
            times = []
            for i in range(3):
                attrs = html_attrs(dump(binary, Path(tmp) / f"p{width}-{i}", url, width))
                times.append(int(attrs.get("interactive-ms", "-1")))
            attrs = html_attrs(dump(binary, Path(tmp) / f"s{width}", url + "#selftest=1", width, 60000))
            print(f"{width} px: interactive after {statistics.median(times)} ms (median of {times}); "
                  f"selftest: {attrs.get('charts')}/{attrs.get('charts-expected')} charts drawn, "
                  f"{attrs.get('overlaps')} text overlaps, marks {json.loads(attrs.get('marks', '{}'))}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
