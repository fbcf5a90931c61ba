"""The median's confidence interval covers what it claims (checked by simulation, as asv does)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import median_ci, summarize


@pytest.mark.parametrize("n", [10, 25, 60])
def test_median_ci_covers_the_true_median_at_least_95_percent(n):
    rng = np.random.default_rng(0)
    true_median = np.log(2)  # exponential(1): skewed like timing noise
    hits = 0
    trials = 2000
    for _ in range(trials):
        lo, hi = median_ci(rng.exponential(1.0, n))
        hits += lo <= true_median <= hi
    assert hits / trials >= 0.94


def test_too_few_samples_give_an_unbounded_interval_not_a_tight_one():
    assert median_ci([1.0, 2.0, 3.0]) == (-math.inf, math.inf)
    assert summarize([1.0, 2.0, 3.0]).ci_half_width_rel == math.inf


def test_summary_fields():
    s = summarize([3.0, 1.0, 2.0, 4.0, 5.0, 6.0])
    assert (s.n, s.median, s.minimum, s.mean) == (6, 3.5, 1.0, 3.5)
    assert (s.ci_low, s.ci_high) == (1.0, 6.0)
    assert s.stdev == pytest.approx(np.std([1, 2, 3, 4, 5, 6], ddof=1))
