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


# -- the regression test, over independent processes ---------------------------------------
# Samples inside one process share that process's luck (its core, its cache, its allocator,
# and for JAX/TensorFlow's small CPU calls one of two steady states it settles into), so they
# are not independent. The independent unit is the *process*: each contributes one figure
# per case (its median), and the test compares the two sides' sets of per-process figures,
# on a log scale so that a slowdown is a shift and spreads are relative.

# Variance of the Hodges-Lehmann shift relative to the difference of means under normal
# noise is pi/3 (asymptotic efficiency 3/pi = 0.955): the price of its robustness to one
# disturbed process on either side.
HL_VARIANCE_FACTOR = math.pi / 3


def hodges_lehmann(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Median of all pairwise differences candidate_j - baseline_i: the shift estimate that
    goes with the Mann-Whitney test. One outlying process on either side barely moves it."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    return float(np.median(c[None, :] - b[:, None]))


@dataclass(frozen=True)
class Spread:
    """A case's between-process spread (SD of log per-process figures) as the test uses it."""

    sigma: float  # the SD used
    df: float  # its degrees of freedom
    own: float  # the case's own sample SD over the baseline's processes


def sample_sd(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=float)
    return float(np.std(x, ddof=1)) if x.size > 1 else math.nan


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sample pooled SD, each side about its own mean (a shift between them does not count)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    df = x.size + y.size - 2
    if df < 1:
        return math.nan
    ss = float(np.sum((x - x.mean()) ** 2) + np.sum((y - y.mean()) ** 2))
    return math.sqrt(ss / df)


def prior_sd(own_sds: Sequence[float]) -> float:
    """The typical between-process SD of a group of cases (one framework on one machine):
    the square root of the median variance, so a few bimodal cases do not set it."""
    v = np.asarray([s * s for s in own_sds if math.isfinite(s)], dtype=float)
    return float(math.sqrt(np.median(v))) if v.size else math.nan


def moderated_spread(own_sd: float, own_df: float, prior: float, prior_df: float) -> Spread:
    """A case's spread, borrowing strength from its group (Smyth's moderated variance, as
    limma does for few replicates and many tests), and never below the case's own.

    With 3-5 processes a sample SD is itself very noisy; by luck it can come out tiny, and a
    test that trusts it raises false alarms. Pooling with the group's typical spread, worth
    `prior_df` extra degrees of freedom, steadies it and lets the t quantile use
    own_df + prior_df degrees of freedom. Taking the larger of that and the case's own SD
    keeps a genuinely noisy (e.g. bimodal) case from being shrunk into false alarms.
    """
    if not math.isfinite(prior) or prior_df <= 0:
        return Spread(own_sd, own_df, own_sd)
    pooled = math.sqrt((prior_df * prior**2 + own_df * own_sd**2) / (prior_df + own_df))
    return Spread(max(pooled, own_sd), own_df + prior_df, own_sd)


@dataclass(frozen=True)
class ShiftTest:
    """candidate vs baseline, on log per-process figures. All shifts are natural logs."""

    shift: float  # Hodges-Lehmann estimate of log(candidate / baseline)
    se: float  # its standard error
    df: float
    critical: float  # |shift| beyond this is a change: significance at the per-case level, or the floor
    detectable: float  # the slowdown caught with probability `power`
    p_value: float  # two-sided, unadjusted
    ci_low: float
    ci_high: float


def shift_test(
    baseline_logs: Sequence[float],
    candidate_logs: Sequence[float],
    spread: Spread,
    case_alpha: float,
    power: float = 0.9,
    floor: float = 0.0,
    confidence: float = 0.95,
) -> ShiftTest:
    """The per-case test: a t test of the Hodges-Lehmann shift with the baseline's spread.

    `case_alpha` is the two-sided level for this case (the gate passes alpha / number of
    cases, Bonferroni, so the chance of any false alarm in the suite stays below alpha).
    The critical shift is known before the candidate runs (it needs only the baseline and
    the number of candidate processes), so each case can state what it can detect:
    `detectable` is the true slowdown that exceeds the critical shift with probability
    `power`. `floor` (a log ratio) is the smallest change that matters at all.
    """
    n_b, n_c = len(baseline_logs), len(candidate_logs)
    se = spread.sigma * math.sqrt((1 / n_b + 1 / n_c) * HL_VARIANCE_FACTOR)
    t = sps.t(spread.df)
    critical = max(float(t.ppf(1 - case_alpha / 2)) * se, floor)
    shift = hodges_lehmann(baseline_logs, candidate_logs)
    p = float(2 * t.sf(abs(shift) / se)) if se > 0 else (0.0 if shift != 0 else 1.0)
    half = float(t.ppf(1 - (1 - confidence) / 2)) * se
    return ShiftTest(shift, se, spread.df, critical, critical + float(t.ppf(power)) * se, p, shift - half, shift + half)
