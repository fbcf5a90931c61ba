"""Fixed colours per framework, the same in every chart of every report.

A reader learns "orange is torch" once and never has to re-read a legend. The page's
script reads this table from the page's data; nothing else decides a colour.
"""

from __future__ import annotations

from typing import Iterable

FRAMEWORK_COLOURS = {
    "torch": "#EE4C2C",  # PyTorch's brand red-orange
    "tensorflow": "#F2A900",  # TensorFlow amber
    "jax": "#3B6FD8",  # blue
    "mlx": "#2E9E57",  # green
}
# For frameworks outside the table: tab10 minus hues already taken above.
_SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22")


def palette(frameworks: Iterable[str]) -> dict[str, str]:
    """Colour per framework: the fixed table first, spare colours in sorted-name order."""
    names = sorted(set(frameworks))
    spare = iter(_SPARE_COLOURS * (1 + len(names) // len(_SPARE_COLOURS)))
    return {name: FRAMEWORK_COLOURS.get(name) or next(spare) for name in names}
