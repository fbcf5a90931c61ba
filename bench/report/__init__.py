"""The HTML report: `bench report RESULTS... -o DIR` and `bench report --serve`.

build    results → one self-contained index.html (+ data/ for download)
data     loading and the derived columns every chart reads
charts   one function per chart (matplotlib → inline SVG)
sections headline, support matrix, winners, the table of every row
peaks    datasheet and measured peaks for the roofline
style    colours per framework and the common look
serve    a localhost server for the rendered folder
"""

from bench.report.build import ReportError, build_report
from bench.report.serve import serve, start_server

__all__ = ["ReportError", "build_report", "serve", "start_server"]
