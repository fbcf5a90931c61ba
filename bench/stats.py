"""Summaries of timing samples. A leaf module: no I/O, scipy does the maths.

The median is the headline because timing noise is one-sided (interrupts, page
faults, frequency dips only ever add time); its confidence interval comes from order
statistics, which assume nothing about the distribution's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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


def trimmed_pooled_sd(a: Sequence[float], b: Sequence[float], min_size: int = 4) -> float:
    """`pooled_sd` after each side of at least `min_size` processes loses its one process
    farthest from the side's median. One process of four in a slow state (they come and go on
    a shared machine) then does not widen the bar over a real slowdown, while a side whose
    processes split between two states still shows the split (two of four, or of three)."""
    def trim(values: Sequence[float]) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        if x.size < min_size:
            return x
        return np.delete(x, int(np.argmax(np.abs(x - np.median(x)))))

    return pooled_sd(trim(a), trim(b))


def prior_sd(own_sds: Sequence[float]) -> float:
    """The typical between-process SD of a group of cases (one framework on one machine):
    the square root of the median variance, so a few bimodal cases do not set it."""
    v = np.asarray([s * s for s in own_sds if math.isfinite(s)], dtype=float)
    return float(math.sqrt(np.median(v))) if v.size else math.nan


@dataclass(frozen=True)
class Prior:
    """A group's typical between-process spread and how many degrees of freedom it is worth."""

    sd: float
    df: float


def _trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x, by Newton's method (as limma's trigammaInverse)."""
    from scipy.special import polygamma

    if x > 1e7:
        return 1 / math.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(polygamma(1, y))
        step = tri * (1 - tri / x) / float(polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def fit_priors(groups: Mapping[Any, Sequence[float]], own_df: float, max_df: float = 60.0) -> dict[Any, Prior]:
    """Each group's prior spread, and one prior worth in degrees of freedom for all groups,
    estimated from the cases' own sample SDs (Smyth 2004, limma's fitFDist, by the moments of
    log variances; each group, e.g. one framework on one machine, keeps its own typical spread).

    A case's sample variance is its true variance times chi2(own_df)/own_df; if the true
    variances of a group scatter around its s0^2 as a scaled inverse chi2 with d0 degrees of
    freedom, the log sample variances scatter by trigamma(own_df/2) + trigamma(d0/2). The
    scatter beyond what sampling alone explains measures how alike the cases are: alike cases
    (a large d0) lend each other a lot, very different ones (bimodal cases, mixed sizes)
    little. With own_df = 2 one group's 30 cases say little about d0, so the estimate pools the
    scatter of every group (about its own mean). Capped at `max_df`; with fewer than 3 usable
    SDs in all, the median-variance prior with 4 df.
    """
    from scipy.special import digamma, polygamma

    half = own_df / 2
    centred: list[np.ndarray] = []
    means: dict[Any, float] = {}
    for g, own in groups.items():
        sds = np.asarray([x for x in own if math.isfinite(x) and x > 0], dtype=float)
        if sds.size:
            e = np.log(sds**2) - float(digamma(half)) + math.log(half)
            means[g] = float(np.mean(e))
            centred.append(e - means[g])
    n = sum(c.size for c in centred)
    if own_df <= 0 or n - len(centred) < 2:
        return {g: Prior(prior_sd(own), 4.0) for g, own in groups.items()}
    excess = float(sum(np.sum(c**2) for c in centred)) / (n - len(centred)) - float(polygamma(1, half))
    d0 = min(2 * _trigamma_inverse(excess), max_df) if excess > 0 else max_df
    shift = float(digamma(d0 / 2)) - math.log(d0 / 2)
    return {g: Prior(math.sqrt(math.exp(means[g] + shift)) if g in means else math.nan, d0) for g in groups}


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
    se, critical, detectable = bar(spread, len(baseline_logs), len(candidate_logs), case_alpha, power, floor)
    t = sps.t(spread.df)
    shift = hodges_lehmann(baseline_logs, candidate_logs)
    p = float(2 * t.sf(abs(shift) / se)) if se > 0 else (0.0 if shift != 0 else 1.0)
    half = float(t.ppf(1 - (1 - confidence) / 2)) * se
    return ShiftTest(shift, se, spread.df, critical, detectable, p, shift - half, shift + half)


def bar(spread: Spread, n_baseline: int, n_candidate: int, case_alpha: float, power: float = 0.9,
        floor: float = 0.0) -> tuple[float, float, float]:
    """(standard error, critical shift, detectable shift) of `shift_test` before any candidate
    exists: they need only the spread and the two sides' process counts. Apart from the test so
    that `bench noise` can ask what a gate of other sizes would detect with a measured spread."""
    se = spread.sigma * math.sqrt((1 / n_baseline + 1 / n_candidate) * HL_VARIANCE_FACTOR)
    t = sps.t(spread.df)
    critical = max(float(t.ppf(1 - case_alpha / 2)) * se, floor)
    return se, critical, critical + float(t.ppf(power)) * se


# -- a figure over processes ----------------------------------------------------------------
# A case's headline stands on several fresh processes: each process gives one figure (its own
# median), and the headline is the median of those figures with a between-process interval.
# Between-process noise is multiplicative (a process lands in a slower state), so the interval
# is built on the log scale. With 3-5 processes an order-statistic interval of the median is
# unbounded at 95% (it needs n >= 6), so the interval is the t interval of the median of a
# log-normal sample: median(log x) ± t(n-1) · sqrt(pi/2) · sd(log x) / sqrt(n), where sqrt(pi/2)
# is the median's standard error relative to the mean's under normal noise. With 6 or more
# processes it is never narrower than the distribution-free order-statistic interval, so a
# spread of two speed states cannot hide behind the normal assumption.
MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)


@dataclass(frozen=True)
class ProcessSummary:
    """One case's figure over processes: the median of the per-process figures, its 95%
    between-process interval (nan for a single process: one process cannot show the spread),
    the number of processes, and their spread (SD of the log figures, as a fraction)."""

    n: int
    median: float
    low: float
    high: float
    spread: float

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def process_interval(figures: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The between-process interval of the median of `figures` (one per process, all > 0):
    (nan, nan) for fewer than two processes, never narrower than the order-statistic interval."""
    x = np.asarray([f for f in figures if math.isfinite(f) and f > 0], dtype=float)
    if x.size < 2:
        return (math.nan, math.nan)
    logs = np.log(x)
    centre = float(np.median(logs))
    half = float(sps.t.ppf(0.5 + confidence / 2, x.size - 1)) * MEDIAN_SE_FACTOR * float(np.std(logs, ddof=1)) / math.sqrt(x.size)
    low, high = math.exp(centre - half), math.exp(centre + half)
    os_low, os_high = median_ci(x, confidence)
    if math.isfinite(os_low) and math.isfinite(os_high):
        low, high = min(low, os_low), max(high, os_high)
    return (low, high)


def summarize_processes(figures: Sequence[float], confidence: float = 0.95) -> ProcessSummary:
    """The headline of one case from its per-process figures (non-finite or non-positive
    figures, e.g. of a process that died, are not figures and are left out)."""
    x = np.asarray([f for f in figures if math.isfinite(f) and f > 0], dtype=float)
    if x.size == 0:
        return ProcessSummary(0, math.nan, math.nan, math.nan, math.nan)
    low, high = process_interval(x, confidence)
    spread = math.expm1(float(np.std(np.log(x), ddof=1))) if x.size > 1 else math.nan
    return ProcessSummary(int(x.size), float(np.median(x)), low, high, spread)


def intervals_overlap(a_low: Any, a_high: Any, b_low: Any, b_high: Any) -> bool:
    """Whether two intervals share a point; False when either is unknown (nan)."""
    def number(v: Any) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    a_low, a_high, b_low, b_high = map(number, (a_low, a_high, b_low, b_high))
    if not all(math.isfinite(v) for v in (a_low, a_high, b_low, b_high)):
        return False
    return a_low <= b_high and b_low <= a_high
