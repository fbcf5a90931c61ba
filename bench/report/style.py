"""One look for every chart: fixed framework colours, readable defaults, SVG output.

Colours are fixed per framework for the whole report (and across reports) so a reader
learns "orange is torch" once and never has to re-read a legend. Charts are rendered by
matplotlib's object API (no pyplot), so building a report leaves no global figure state
behind and is safe to call from a long-lived process such as the server.
"""

from __future__ import annotations

import io
from typing import Any, Iterable

import matplotlib
from matplotlib.figure import Figure

FRAMEWORK_COLOURS = {
    "torch": "#EE4C2C",  # PyTorch's brand red-orange
    "tensorflow": "#F2A900",  # TensorFlow amber
    "jax": "#3B6FD8",  # blue
    "mlx": "#2E9E57",  # green
}
# For frameworks outside the table: matplotlib's tab10 minus hues already taken above.
_SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22")

RC = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable, crisp at any zoom
    "text.parse_math": False,  # labels are data: a "$" in a machine name is a dollar, not mathtext
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.7,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "figure.dpi": 96,
}


def palette(frameworks: Iterable[str]) -> dict[str, str]:
    """Colour per framework: the fixed table first, spare colours in sorted-name order."""
    names = sorted(set(frameworks))
    spare = iter(_SPARE_COLOURS * (1 + len(names) // len(_SPARE_COLOURS)))
    return {name: FRAMEWORK_COLOURS.get(name) or next(spare) for name in names}


def themed() -> Any:
    """Context in which charts are built: rcParams are read when artists are created."""
    return matplotlib.rc_context(RC)


def new_figure(width: float, height: float) -> Figure:
    """A figure in inches, capped so a chart with many cases still fits a wide screen."""
    return Figure(figsize=(min(max(width, 4.0), 18.0), min(max(height, 2.4), 30.0)), layout="constrained")


def to_svg(fig: Figure, salt: str) -> str:
    """Inline-ready SVG markup.

    `salt` makes matplotlib's internal element ids unique per chart and stable across
    runs: many SVGs share one HTML document, and colliding clip-path ids would make one
    chart clip with another's rectangle.
    """
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and DOCTYPE: invalid inside HTML
