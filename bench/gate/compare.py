"""Baseline vs candidate: the CI regression gate.

A case is `slower` only when two things hold at once, as in asv:

* practical: the ratio of medians (candidate / baseline) is beyond the threshold, which
  is set above the run-to-run noise measured on real runs (`scripts/gate_simulation.py`);
* statistical: a two-sided Mann-Whitney U test on the raw samples rejects "same
  location" after Holm's correction over every compared case, so the chance of any
  false alarm in the whole suite, not in each case, is held at `alpha`.

Samples inside one run are correlated, so a within-run test alone overstates what one
pair of runs can show; the threshold is what absorbs the between-run noise. Where a side
holds several runs (a folder), the run is the unit: each side's figure is the median of
its per-run medians, the bootstrap resamples runs as well as samples, the test compares
against the baseline's typical run, the bar rises to the case's own run-to-run spread
when that is wider than the threshold, and a slowdown must show in *every* candidate run
before it fails the gate (TorchBench's re-measure: a flaky alarm disappears on the
second measurement, a real one does not). `scripts/gate_simulation.py` measures what
this buys on real runs; the README quotes it.

Never compared: rows whose workload definition changed (`changed definition`), and
rows whose measured precision changed (`precision changed`, a failure of its own).
When the statistics cannot be computed the answer is `insufficient` and exit code 2,
never a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bench import stats
from bench.results import KEY_COLUMNS, ResultsError, load_results

EXIT_PASS, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2

# Verdicts, in the order a reader wants them (worst first).
NOW_FAILING = "now failing"
SLOWER = "slower"
PRECISION_CHANGED = "precision changed"
INSUFFICIENT = "insufficient"
CHANGED_DEFINITION = "changed definition"
MISSING = "missing"
NEW = "new"
NOW_CORRECT = "now correct"
FASTER = "faster"
SAME = "same"
NOT_MEASURED = "not measured"
VERDICTS = (NOW_FAILING, SLOWER, PRECISION_CHANGED, INSUFFICIENT, CHANGED_DEFINITION, MISSING, NEW,
            NOW_CORRECT, FASTER, SAME, NOT_MEASURED)
FAILING_VERDICTS = frozenset({NOW_FAILING, SLOWER, PRECISION_CHANGED})

# metric → prefix of the sample columns it reads; "" is the row's headline timing.
METRICS = {"median_s": "", "latency_median_s": "latency_", "queued_median_s": "queued_"}
MATCH_COLUMNS = (*KEY_COLUMNS, "timing")
MIN_SAMPLES_PER_RUN = 5


@dataclass(frozen=True)
class GateConfig:
    """The gate's knobs. The default threshold is justified by measurement in the README."""

    threshold: float = 0.05  # ratio beyond 1 ± this is a practical change
    alpha: float = 0.05  # family-wise: chance of any false alarm over the whole suite
    confidence: float = 0.95  # of the displayed bootstrap interval
    metric: str = "median_s"
    noise_floor: bool = True  # widen a case's bar to its baseline run-to-run spread (needs ≥2 baseline runs)
    n_resamples: int = 2000
    seed: int = 0


@dataclass
class CaseResult:
    key: dict[str, Any]
    verdict: str
    detail: str = ""
    baseline_s: float = math.nan
    candidate_s: float = math.nan
    ratio: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan
    baseline_runs: int = 0
    candidate_runs: int = 0
    baseline_samples: int = 0
    candidate_samples: int = 0
    run_ratios: list[float] = field(default_factory=list)  # each candidate run's median / baseline
    noise_floor: float = 0.0  # the baseline's own run-to-run spread (max/min of run medians − 1)

    @property
    def label(self) -> str:
        from bench.summary import describe_params

        k = self.key
        return f"{k['framework']}/{k['backend'] or '?'} {k['workload']} {describe_params(k['params'])} {k['dtype']} {k['timing'] or ''}".rstrip()


@dataclass
class Comparison:
    config: GateConfig
    baseline: str
    candidate: str
    cases: list[CaseResult]

    def by_verdict(self, *verdicts: str) -> list[CaseResult]:
        return [c for c in self.cases if c.verdict in verdicts]

    @property
    def exit_code(self) -> int:
        if self.by_verdict(INSUFFICIENT):
            return EXIT_BAD_INPUT
        return EXIT_REGRESSION if self.by_verdict(*FAILING_VERDICTS) else EXIT_PASS

    @property
    def headline(self) -> str:
        counts = {v: len(self.by_verdict(v)) for v in VERDICTS}
        tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        outcome = {EXIT_PASS: "PASS", EXIT_REGRESSION: "FAIL", EXIT_BAD_INPUT: "CANNOT JUDGE"}[self.exit_code]
        return f"{outcome}: {tally} (threshold {self.config.threshold:.0%}, family-wise alpha {self.config.alpha:g})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "baseline": self.baseline,
            "candidate": self.candidate,
            "exit_code": self.exit_code,
            "headline": self.headline,
            "cases": [{**asdict(c), "label": c.label} for c in self.cases],
        }


# -- reading the two sides ----------------------------------------------------------------
def parse_threshold(text: str) -> float:
    """'5%' or '0.05' → 0.05. ValueError for anything else."""
    raw = text.strip()
    value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    if not (0 <= value < 10) or not math.isfinite(value):
        raise ValueError(f"threshold must be a fraction or percentage such as 5% or 0.05, got {text!r}")
    return value


def load_side(paths: Sequence[Path | str], name: str) -> pd.DataFrame:
    """A side's rows; ResultsError (→ exit 2) when there is nothing usable to compare."""
    df = load_results(paths)
    if df.empty:
        raise ResultsError(f"{name} {', '.join(map(str, paths))}: no result rows")
    return df


def _with_timing(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Adds the timing kind the metric reads, so latency is never compared with queued."""
    prefix = METRICS[metric]
    out = df.copy()
    out["timing"] = prefix.rstrip("_") if prefix else out["timing"]
    if "mode" not in out:  # frames built without the mode column (results files always have it): eager
        out["mode"] = "eager"
    return out


def _match_key(row: pd.Series) -> tuple:
    return tuple(None if pd.isna(row[c]) else row[c] for c in MATCH_COLUMNS)


def _adopt_wildcards(keys: list[tuple], reference: set[tuple]) -> list[tuple]:
    """A row that failed before its backend or timing kind was known (a worker that never
    started, an error row) has nulls there; it takes the one reference key that agrees
    with it elsewhere, so an ok→error change is seen as `now failing`, not missing + new."""
    out = []
    for key in keys:
        if None in key:
            fits = [ref for ref in reference if all(k is None or k == r for k, r in zip(key, ref))]
            key = fits[0] if len(fits) == 1 else key
        out.append(key)
    return out


def _grouped(df: pd.DataFrame, reference: set[tuple] | None = None) -> dict[tuple, pd.DataFrame]:
    keys = [_match_key(r) for _, r in df.iterrows()]
    if reference is not None:
        keys = _adopt_wildcards(keys, reference)
    df = df.assign(_key=keys)
    return {k: part for k, part in df.groupby("_key", sort=False)}


# -- judging one case ---------------------------------------------------------------------
def _works(row: pd.Series) -> bool:
    return row["status"] == "ok" and bool(row["correct"])


def _state(rows: pd.DataFrame) -> str:
    return ", ".join(sorted({row["status"] if row["status"] != "ok" else ("ok" if _works(row) else "incorrect")
                             for _, row in rows.iterrows()}))


def _runs(rows: pd.DataFrame, prefix: str) -> list[np.ndarray]:
    return [np.asarray(s, dtype=float) for s in rows[f"{prefix}samples_s"] if s is not None]


def _usable(runs: list[np.ndarray]) -> bool:
    return bool(runs) and all(r.size >= MIN_SAMPLES_PER_RUN and np.all(np.isfinite(r)) and np.all(r > 0) for r in runs)


def _judge_without_statistics(key: dict, base: pd.DataFrame, cand: pd.DataFrame) -> CaseResult | None:
    """Every verdict that does not need timing statistics, or None when timing decides."""
    result = CaseResult(key, "", baseline_runs=len(base), candidate_runs=len(cand))
    b_hashes, c_hashes = set(base["workload_hash"].dropna()), set(cand["workload_hash"].dropna())
    if b_hashes != c_hashes:
        result.verdict, result.detail = CHANGED_DEFINITION, "workload definition changed: refresh the baseline"
        return result
    baseline_worked = any(_works(r) for _, r in base.iterrows())  # known to work at least once
    candidate_works = all(_works(r) for _, r in cand.iterrows())  # and must work every time
    if baseline_worked and not candidate_works:
        result.verdict, result.detail = NOW_FAILING, f"{_state(base)} → {_state(cand)}"
        reasons = {str(r) for r in cand.get("reason", pd.Series(dtype=str)).dropna() if str(r)}
        if reasons:
            result.detail += f": {sorted(reasons)[0][:120]}"
        return result
    if not baseline_worked and candidate_works:
        result.verdict, result.detail = NOW_CORRECT, f"{_state(base)} → {_state(cand)}"
        return result
    if not baseline_worked:
        result.verdict, result.detail = NOT_MEASURED, f"{_state(base)} → {_state(cand)}"
        return result
    b_prec = set(base.loc[base.apply(_works, axis=1), "effective_precision"].dropna())
    c_prec = set(cand["effective_precision"].dropna())
    if b_prec != c_prec:
        result.verdict = PRECISION_CHANGED
        result.detail = f"measured {'/'.join(sorted(b_prec))} → {'/'.join(sorted(c_prec))}: timings not comparable"
        return result
    return None


def _measure(result: CaseResult, base_runs: list[np.ndarray], cand_runs: list[np.ndarray], config: GateConfig) -> None:
    est = stats.ratio_of_medians(base_runs, cand_runs, config.confidence, config.n_resamples, config.seed)
    result.baseline_s, result.candidate_s = stats.center(base_runs), stats.center(cand_runs)
    result.ratio, result.ci_low, result.ci_high = est.ratio, est.ci_low, est.ci_high
    # The test sees the baseline's typical run (the one nearest its center), not every run
    # pooled: one disturbed baseline run would otherwise smear the reference and hide a
    # real slowdown behind it.
    typical = min(base_runs, key=lambda r: abs(float(np.median(r)) - result.baseline_s))
    result.p_value = stats.mann_whitney_p(typical, np.concatenate(cand_runs))
    result.run_ratios = [float(np.median(r)) / result.baseline_s for r in cand_runs]
    result.noise_floor = stats.run_spread(base_runs)
    result.baseline_samples = typical.size
    result.candidate_samples = sum(r.size for r in cand_runs)


def _decide(result: CaseResult, config: GateConfig) -> None:
    """Practical and statistical significance, confirmed by every candidate run.

    The practical bar is the threshold or, when the baseline holds several runs, the
    case's own run-to-run spread if that is wider: a case that moves 20% between runs of
    unchanged code cannot show a 10% change, and the table says so instead of guessing.
    """
    bar = max(config.threshold, result.noise_floor if config.noise_floor else 0.0)
    up, down = 1.0 + bar, 1.0 / (1.0 + bar)
    significant = result.p_adjusted < config.alpha
    direction = SLOWER if result.ratio > up else FASTER if result.ratio < down else SAME
    if direction == SAME:
        result.verdict = SAME
        if result.noise_floor > config.threshold:
            result.detail = f"run-to-run noise {result.noise_floor:.0%} > threshold: changes below it go unseen"
        return
    if not significant:
        result.verdict, result.detail = SAME, f"~ {result.ratio:.2f}× but not significant (p={result.p_adjusted:.2g})"
        return
    confirmed = [r > up for r in result.run_ratios] if direction == SLOWER else [r < down for r in result.run_ratios]
    if not all(confirmed):
        result.verdict = SAME
        result.detail = f"~ {direction} in {sum(confirmed)} of {len(confirmed)} candidate runs only: not reproduced"
        return
    result.verdict = direction


def _machines(df: pd.DataFrame) -> str:
    return ", ".join(sorted(map(str, df["machine"].dropna().unique()))) or "no machine"


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, config: GateConfig = GateConfig(),
            baseline_name: str = "baseline", candidate_name: str = "candidate") -> Comparison:
    """Judge every case of either side. ResultsError when the two sides share no case."""
    if config.metric not in METRICS:
        raise ResultsError(f"unknown metric {config.metric!r} (choose from: {', '.join(METRICS)})")
    prefix = METRICS[config.metric]
    base_groups = _grouped(_with_timing(baseline, config.metric))
    cand_groups = _grouped(_with_timing(candidate, config.metric), set(base_groups))
    shared = [k for k in base_groups if k in cand_groups]
    if not shared:
        raise ResultsError(
            f"no case in common between {baseline_name} ({_machines(baseline)}) and {candidate_name} "
            f"({_machines(candidate)}): cases match on {', '.join(MATCH_COLUMNS)}"
        )
    results: list[CaseResult] = []
    measured: list[CaseResult] = []
    for key in list(base_groups) + [k for k in cand_groups if k not in base_groups]:
        named = dict(zip(MATCH_COLUMNS, key))
        if key not in cand_groups:
            results.append(CaseResult(named, MISSING, baseline_runs=len(base_groups[key])))
            continue
        if key not in base_groups:
            results.append(CaseResult(named, NEW, candidate_runs=len(cand_groups[key])))
            continue
        base, cand = base_groups[key], cand_groups[key]
        judged = _judge_without_statistics(named, base, cand)
        if judged is not None:
            results.append(judged)
            continue
        base = base[base.apply(_works, axis=1)]
        result = CaseResult(named, "", baseline_runs=len(base), candidate_runs=len(cand))
        base_runs, cand_runs = _runs(base, prefix), _runs(cand, prefix)
        if not (_usable(base_runs) and _usable(cand_runs)):
            result.verdict = INSUFFICIENT
            result.detail = f"fewer than {MIN_SAMPLES_PER_RUN} valid samples in a run: cannot judge"
        else:
            _measure(result, base_runs, cand_runs, config)
            measured.append(result)
        results.append(result)
    if measured:
        adjusted = stats.holm_adjust([r.p_value for r in measured])
        for r, p in zip(measured, adjusted):
            r.p_adjusted = float(p)
        reachable = config.alpha / len(measured)  # Holm's first step
        for r in measured:
            if stats.min_mann_whitney_p(r.baseline_samples, r.candidate_samples) >= reachable:
                r.verdict = INSUFFICIENT
                r.detail = f"{r.baseline_samples} vs {r.candidate_samples} samples cannot reach p < {reachable:.2g}"
            else:
                _decide(r, config)
    order = {v: i for i, v in enumerate(VERDICTS)}
    results.sort(key=lambda r: (order[r.verdict], -abs(math.log(r.ratio)) if r.ratio > 0 else 0.0))
    return Comparison(config, baseline_name, candidate_name, results)


def compare_paths(baseline: Iterable[Path | str], candidate: Iterable[Path | str],
                  config: GateConfig = GateConfig()) -> Comparison:
    b, c = list(baseline), list(candidate)
    return compare(load_side(b, "baseline"), load_side(c, "candidate"), config,
                   ", ".join(map(str, b)), ", ".join(map(str, c)))
