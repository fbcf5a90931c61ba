"""Summaries of timing samples. A leaf module: no I/O, scipy does the maths.

The median is the headline because timing noise is one-sided (interrupts, page
faults, frequency dips only ever add time); its confidence interval comes from order
statistics, which assume nothing about the distribution's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mean: float
    stdev: float
    minimum: float
    ci_low: float
    ci_high: float

    @property
    def ci_half_width_rel(self) -> float:
        """The larger side of the interval, relative to the median."""
        if self.median <= 0 or not math.isfinite(self.ci_low) or not math.isfinite(self.ci_high):
            return math.inf
        return max(self.median - self.ci_low, self.ci_high - self.median) / self.median


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    Ranks j < k are chosen symmetric around n/2 so that P(x_(j) <= median <= x_(k))
    >= confidence under Binomial(n, 1/2). Too few samples for the requested confidence
    give (-inf, inf) rather than a falsely tight interval.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - confidence
    # Largest j (0-based lower rank) with P(B <= j-1) <= alpha/2, B ~ Binom(n, 0.5).
    j = int(sps.binom.ppf(alpha / 2, n, 0.5))
    while j > 0 and sps.binom.cdf(j - 1, n, 0.5) > alpha / 2:
        j -= 1
    if j < 1 or 2 * sps.binom.cdf(j - 1, n, 0.5) > alpha:
        return (-math.inf, math.inf)
    lower, upper = j - 1, n - j
    return (float(x[lower]), float(x[upper]))


def summarize(samples: Sequence[float], confidence: float = 0.95) -> Summary:
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan)
    lo, hi = median_ci(x, confidence)
    return Summary(
        n=int(x.size),
        median=float(np.median(x)),
        mean=float(np.mean(x)),
        stdev=float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        minimum=float(np.min(x)),
        ci_low=lo,
        ci_high=hi,
    )
