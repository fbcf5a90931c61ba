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


# -- the regression test ------------------------------------------------------------------
# Samples taken inside one process share that process's luck (its core, its cache, its
# neighbours), so they are not independent of each other; a *run* is the independent unit.
# A side of a comparison is therefore a list of runs, each an array of samples.

Runs = Sequence[Sequence[float]]


@dataclass(frozen=True)
class RatioEstimate:
    """candidate / baseline of the run-level medians, with a bootstrap interval."""

    ratio: float
    ci_low: float
    ci_high: float


def center(runs: Runs) -> float:
    """A side's typical time: the median over runs of each run's median.

    With one run it is that run's median. With several, one disturbed run (a neighbour's
    job, a frequency dip) moves it less than pooling every sample would.
    """
    return float(np.median([np.median(np.asarray(r, dtype=float)) for r in runs]))


def run_spread(runs: Runs) -> float:
    """How far apart the runs of unchanged code landed: max/min of the run medians − 1
    (TorchBench's `max_delta`); 0 for a single run, which cannot show it."""
    medians = [float(np.median(np.asarray(r, dtype=float))) for r in runs]
    return max(medians) / min(medians) - 1.0 if len(medians) > 1 else 0.0


def bootstrap_centers(runs: Runs, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`n_resamples` bootstrap replicates of `center(runs)`, resampling at both levels.

    Runs are drawn with replacement (the between-run noise, when there are several), then
    samples within each drawn run (the within-run noise). Vectorised over replicates: one
    (n_resamples, n) index matrix per run.
    """
    per_run = np.empty((len(runs), n_resamples))
    for i, r in enumerate(runs):
        x = np.asarray(r, dtype=float)
        per_run[i] = np.median(x[rng.integers(0, x.size, size=(n_resamples, x.size))], axis=1)
    if len(runs) == 1:
        return per_run[0]
    pick = rng.integers(0, len(runs), size=(n_resamples, len(runs)))
    return np.median(per_run[pick, np.arange(n_resamples)[:, None]], axis=1)


def ratio_of_medians(
    baseline: Runs, candidate: Runs, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> RatioEstimate:
    """Ratio of the two sides' centers and its percentile-bootstrap interval (fixed seed,
    so the same files always give the same answer)."""
    rng = np.random.default_rng(seed)
    ratios = bootstrap_centers(candidate, n_resamples, rng) / bootstrap_centers(baseline, n_resamples, rng)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(ratios, [tail, 1.0 - tail])
    return RatioEstimate(center(candidate) / center(baseline), float(lo), float(hi))


def mann_whitney_p(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: do the two sets of samples differ in location?

    Rank-based, so it assumes nothing about the (skewed, heavy-tailed) shape of timing
    noise; asv gates on the same test.
    """
    return float(sps.mannwhitneyu(candidate, baseline, alternative="two-sided").pvalue)


def min_mann_whitney_p(n_baseline: int, n_candidate: int) -> float:
    """The smallest two-sided p the test can give for these sizes (asv's `p_min`): below
    the required level, the test could never reject, and saying 'same' would be a lie."""
    n, k = n_baseline + n_candidate, min(n_baseline, n_candidate)
    log_comb = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return min(1.0, math.exp(math.log(2.0) - log_comb))


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: compare each adjusted p with the family-wise alpha.

    Holds the chance of *any* false alarm across all cases at alpha, which is what a gate
    that fails on any alarm needs (a false-discovery rate would allow a steady trickle).
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
