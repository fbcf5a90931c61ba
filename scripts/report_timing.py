"""How long `bench report` takes to render 1,000 rows (the issue asks for the number).

Writes synthetic runs (two machines, four frameworks, every chart kind, loss curves;
see bench/report/demo.py) to a temporary folder, renders the report from them and
prints the wall time of the render alone. Usage: .venv/bin/python scripts/report_timing.py [ROWS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.report import build_report
from bench.report.demo import write_synthetic


def main(n_rows: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic(Path(tmp) / "results", n_rows)
        start = time.perf_counter()
        index = build_report([Path(tmp) / "results"], Path(tmp) / "report")
        elapsed = time.perf_counter() - start
        size = index.stat().st_size
        charts = index.read_text().count('<figure class="chart"')
    print(f"rendered {n_rows} rows from {len(files)} files: {charts} charts, {size / 1e6:.2f} MB index.html "
          f"in {elapsed:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
