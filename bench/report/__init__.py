"""The HTML report: `bench report RESULTS... -o DIR` and `bench report --serve`.

build    results → one self-contained index.html (+ data/ for download)
data     loading, ranking within a mode, and the derived columns everything reads
labels   compact case labels in each workload's terms
measures each workload in its users' units (tokens/s, GB/s, TFLOP/s, ...)
payload  the page's data as JSON: rows, like-with-like groups, measures, roofs
sections headline and support matrix (server-rendered)
peaks    datasheet and measured peaks for the roofline
style    colours per framework
serve    a localhost server for the rendered folder
static   report.js (draws with the vendored plotly.js), report.css
"""

from bench.report.build import ReportError, build_report
from bench.report.serve import serve, start_server

__all__ = ["ReportError", "build_report", "serve", "start_server"]
