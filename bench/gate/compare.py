"""Baseline vs candidate: the CI regression gate, over independent processes.

Samples inside one process are correlated (they share its core, its cache, and for small
JAX/TensorFlow CPU calls one of two steady states the process settles into, ±5-25%), so
the independent unit is the *process*: `bench run --processes N` starts N fresh workers per
framework, and a side of the comparison is every distinct process of its runs
(bench.processes.PROCESS_KEY; one run of N processes is enough, a run read twice counts
once). Each process contributes one figure per case, and the test compares the two sets of
per-process figures, never the samples inside one process (pyperf's 20 worker processes,
TorchBench's 15 rounds).

Per case, on log figures:

* spread: the baseline's between-process SD, moderated with its framework's typical
  spread (`bench.stats.moderated_spread`) so that 3-5 processes give a usable estimate;
* shift: the Hodges-Lehmann estimate of log(candidate / baseline), robust to one disturbed
  process on either side;
* bar: the shift a t test with Bonferroni's correction over every compared case would call
  significant (so the chance of *any* false alarm in the suite is held at `alpha`), or the
  `threshold` floor where that is higher. The bar follows from the baseline's spread, so each
  case states, before the candidate runs, the slowdown it detects with probability `power`
  (`detectable`), and a case too noisy to see a 25% slowdown says so;
* verdict: `slower` when the shift is above the bar, `faster` below minus the bar.

`scripts/gate_simulation.py` measures what this buys on a pool of real runs (docs/gate.md
quotes it); `bench noise` (bench.noise) asks these statistics what they would detect on a
machine's own measured spread. Never compared: rows whose workload definition changed (`changed definition`),
and rows whose measured precision changed (`precision changed`, a failure of its own).
When the statistics cannot be computed (too few processes or samples) the answer is
`insufficient` and exit code 2, never a pass. Only baseline rows of the machines the
candidate ran on take part, so one folder can hold every machine's baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bench import stats
from bench.gate.settings import SETTINGS, setting_notes
from bench.processes import PROCESS_KEY, count_processes, with_process
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
# A pass needs a case both sides measured and that stood up (fail closed: two broken
# environments, or two runs of error rows, once passed as "1 not measured"). A changed
# definition was measured on both sides; the baseline is stale, not the candidate.
PASSING_VERDICTS = frozenset({NOW_CORRECT, FASTER, SAME, CHANGED_DEFINITION})

# metric → prefix of the sample columns it reads; "" is the row's headline timing.
METRICS = {"median_s": "", "latency_median_s": "latency_", "queued_median_s": "queued_"}
MATCH_COLUMNS = (*KEY_COLUMNS, "timing")
# Every column `compare` reads (its verdicts, and the settings its notes compare: a reader that
# hands it fewer columns gets the same verdicts without the notes, so the report cuts its rows
# to this one list rather than to a copy of it).
INPUT_COLUMNS = (*MATCH_COLUMNS, "run_id", "process", "status", "correct", "reason", "workload_hash",
                 "effective_precision", *METRICS, *(f"{prefix}samples_s" for prefix in METRICS.values()),
                 *(column for column, _ in SETTINGS))
MIN_SAMPLES_PER_RUN = 5
MIN_BASELINE_PROCESSES = 3  # a spread needs at least two; three keep one stray process from setting it
MIN_CANDIDATE_PROCESSES = 2
UNDETECTABLE = 0.25  # a case that cannot see a slowdown this large says so
# A process's figure for a case. Timing noise only ever adds time (a neighbour's job, an
# interrupt, a frequency dip), so on a shared runner the fastest samples of a process are the
# ones least touched by others: `min` moved 2-50x less between processes than `median` on the
# 2-core VM under load (README). `median` is the typical call, for a quiet dedicated machine.
FIGURES = {"min": np.min, "median": np.median}


@dataclass(frozen=True)
class GateConfig:
    """The gate's knobs. The defaults are justified by measurement in the README."""

    threshold: float = 0.05  # floor: a change smaller than this never counts, however significant
    alpha: float = 0.05  # family-wise: chance of any false alarm over the whole suite
    power: float = 0.9  # `detectable` is the slowdown caught this often
    confidence: float = 0.95  # of the displayed interval of the ratio
    metric: str = "median_s"
    figure: str = "min"  # per-process figure: FIGURES
    # How much a case's spread borrows from its framework's typical one, in degrees of freedom.
    # None: estimated from how alike the baseline's cases are (bench.stats.fit_priors, Smyth's
    # fitFDist); ~1 on the 2-core VM, where a few cases are far noisier than the rest. A fixed 4
    # stated ≤ 10% for 31% of the cases instead of 12%, but three of them then missed a 25%
    # slowdown they said they would catch (README, "Measured on this VM").
    prior_df: float | None = None
    # Whether the bar also widens with the candidate's own scatter (both sides' pooled spread):
    # it keeps a two-state flip from passing for a slowdown, but one candidate process in a slow
    # state widens it too and hides a real slowdown. make gate's first look goes without it and
    # its confirmation look (more candidate processes) with it.
    candidate_spread: bool = True


@dataclass
class CaseResult:
    key: dict[str, Any]
    verdict: str
    detail: str = ""
    baseline_s: float = math.nan  # median of the baseline's per-process figures (see GateConfig.figure)
    candidate_s: float = math.nan
    ratio: float = math.nan  # exp(Hodges-Lehmann shift of the log figures)
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan  # Bonferroni over the compared cases
    baseline_runs: int = 0  # distinct processes (bench.processes.PROCESS_KEY) on each side
    candidate_runs: int = 0
    spread: float = math.nan  # between-process spread used, as a fraction (exp(sigma) - 1)
    bar: float = math.nan  # this case's threshold: a slowdown beyond it is `slower`
    detectable: float = math.nan  # the slowdown this case catches with probability `power`
    process_ratios: list[float] = field(default_factory=list)  # each candidate process / baseline

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
    notes: list[str] = field(default_factory=list)  # the sides ran with different settings (bench.gate.settings)

    def by_verdict(self, *verdicts: str) -> list[CaseResult]:
        return [c for c in self.cases if c.verdict in verdicts]

    @property
    def exit_code(self) -> int:
        if self.by_verdict(INSUFFICIENT):
            return EXIT_BAD_INPUT
        if self.by_verdict(*FAILING_VERDICTS):
            return EXIT_REGRESSION
        return EXIT_PASS if self.by_verdict(*PASSING_VERDICTS) else EXIT_BAD_INPUT  # nothing measured: no pass

    @property
    def judged(self) -> list[CaseResult]:
        """Cases the timing statistics decided (they state what they can detect)."""
        return [c for c in self.cases if math.isfinite(c.detectable)]

    @property
    def sensitivity(self) -> str:
        """How much the suite can see: the share of cases detecting 10%, and those that cannot see 25%."""
        judged = self.judged
        if not judged:
            return "no case judged by timing"
        at10 = sum(c.detectable <= 0.10 for c in judged)
        at25 = sum(c.detectable <= UNDETECTABLE for c in judged)
        blind = len(judged) - at25
        text = f"{at10} of {len(judged)} cases detect a 10% slowdown, {at25} a 25% one"
        return text + (f"; {blind} too noisy to see 25%" if blind else "")

    @property
    def headline(self) -> str:
        counts = {v: len(self.by_verdict(v)) for v in VERDICTS}
        tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        outcome = {EXIT_PASS: "PASS", EXIT_REGRESSION: "FAIL", EXIT_BAD_INPUT: "CANNOT JUDGE"}[self.exit_code]
        return (f"{outcome}: {tally} (family-wise alpha {self.config.alpha:g}, floor {self.config.threshold:.0%}; "
                f"{self.sensitivity})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "baseline": self.baseline,
            "candidate": self.candidate,
            "exit_code": self.exit_code,
            "headline": self.headline,
            "sensitivity": self.sensitivity,
            "notes": list(self.notes),
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
    """Rows by case key, each with `_works` (ok and correct), computed once per table."""
    cols = df[list(MATCH_COLUMNS)].astype(object)
    keys = list(cols.where(cols.notna(), None).itertuples(index=False, name=None))
    if reference is not None:
        keys = _adopt_wildcards(keys, reference)
    works = (df["status"] == "ok") & df["correct"].astype(object).where(df["correct"].notna(), False).astype(bool)
    df = df.assign(_key=keys, _works=works)
    return {k: part for k, part in df.groupby("_key", sort=False)}


# -- judging one case ---------------------------------------------------------------------
def _state(rows: pd.DataFrame) -> str:
    return ", ".join(sorted({status if status != "ok" else ("ok" if works else "incorrect")
                             for status, works in zip(rows["status"], rows["_works"])}))


def _runs(rows: pd.DataFrame, prefix: str) -> list[np.ndarray]:
    """One array of samples per process of the case (bench.processes.PROCESS_KEY: a run of
    `bench run --processes N` gives N; a file without the process column, one per run)."""
    if "process" not in rows or rows["process"].dtype.kind not in "iu":  # a copy only where a fill is needed
        rows = with_process(rows)
    column = f"{prefix}samples_s"
    found: dict[tuple, list[np.ndarray]] = {}
    for key, samples in zip(rows[list(PROCESS_KEY)].itertuples(index=False, name=None), rows[column]):
        if samples is not None and not (isinstance(samples, float) and math.isnan(samples)):
            found.setdefault(key, []).append(np.asarray(samples, dtype=float))
    return [np.concatenate(parts) for parts in found.values()]


def _usable(runs: list[np.ndarray]) -> bool:
    return bool(runs) and all(r.size >= MIN_SAMPLES_PER_RUN and np.all(np.isfinite(r)) and np.all(r > 0) for r in runs)


def _judge_without_statistics(key: dict, base: pd.DataFrame, cand: pd.DataFrame) -> CaseResult | None:
    """Every verdict that does not need timing statistics, or None when timing decides."""
    result = CaseResult(key, "", baseline_runs=count_processes(base), candidate_runs=count_processes(cand))
    b_hashes, c_hashes = set(base["workload_hash"].dropna()), set(cand["workload_hash"].dropna())
    if b_hashes != c_hashes:
        result.verdict, result.detail = CHANGED_DEFINITION, "workload definition changed: refresh the baseline"
        return result
    baseline_worked = bool(base["_works"].any())  # known to work at least once
    candidate_works = bool(cand["_works"].all())  # and must work every time
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
    b_prec = set(base.loc[base["_works"], "effective_precision"].dropna())
    c_prec = set(cand["effective_precision"].dropna())
    if b_prec != c_prec:
        result.verdict = PRECISION_CHANGED
        result.detail = f"measured {'/'.join(sorted(b_prec))} → {'/'.join(sorted(c_prec))}: timings not comparable"
        return result
    return None


def _log_figures(runs: list[np.ndarray], figure: str) -> np.ndarray:
    """Each process's figure for the case (its fastest or its median sample), as a log."""
    return np.log([float(FIGURES[figure](r)) for r in runs])


def _judge(result: CaseResult, base: np.ndarray, cand: np.ndarray, stated: stats.Spread, both: stats.Spread,
           n_cases: int, config: GateConfig) -> None:
    """The verdict of one case from its log per-process figures.

    `stated` is the baseline's spread: it fixes what the case says it can detect before any
    candidate exists. The decision uses the higher of the bars from that and from the spread
    of both sides together, so a case whose processes flip between two states cannot raise an alarm just
    because its few baseline processes happened to land in one state and the candidate's in
    the other: the candidate's own scatter then shows the flip.
    """
    level, floor = config.alpha / n_cases, math.log1p(config.threshold)
    claim = stats.shift_test(base, cand, stated, level, config.power, floor, config.confidence)
    pooled = stats.shift_test(base, cand, both, level, config.power, floor, config.confidence)
    test = max(claim, pooled, key=lambda t: t.critical) if config.candidate_spread else claim
    result.baseline_s, result.candidate_s = float(np.exp(np.median(base))), float(np.exp(np.median(cand)))
    result.ratio = math.exp(test.shift)
    result.ci_low, result.ci_high = math.exp(test.ci_low), math.exp(test.ci_high)
    result.p_value, result.p_adjusted = test.p_value, min(1.0, test.p_value * n_cases)
    result.spread, result.bar, result.detectable = math.expm1(stated.sigma), math.expm1(test.critical), math.expm1(claim.detectable)
    result.process_ratios = [float(np.exp(c - np.median(base))) for c in cand]
    if test.shift > test.critical:
        result.verdict = SLOWER
    elif test.shift < -test.critical:
        result.verdict = FASTER
    else:
        result.verdict = SAME
        if abs(test.shift) > floor:
            result.detail = f"~ {result.ratio:.2f}× but within this case's noise (bar ±{result.bar:.0%})"
    if result.detectable > UNDETECTABLE:
        note = f"too noisy to detect a {UNDETECTABLE:.0%} slowdown (detects ≥ {result.detectable:.0%})"
        result.detail = f"{result.detail}; {note}" if result.detail else note


def spread_priors(cases: Sequence[tuple[dict[str, Any], np.ndarray]], config: GateConfig) -> dict[tuple, stats.Prior]:
    """Each (framework, machine)'s typical between-process spread and its weight, from the
    cases' baseline log figures: what every case's spread borrows from (bench.stats.fit_priors,
    or a fixed `config.prior_df`)."""
    groups: dict[tuple, list[float]] = {}
    for key, logs in cases:
        groups.setdefault((key["framework"], key["machine"]), []).append(stats.sample_sd(logs))
    if config.prior_df is None:
        return stats.fit_priors(groups, float(np.median([logs.size - 1 for _, logs in cases])))
    return {g: stats.Prior(stats.prior_sd(sds), config.prior_df) for g, sds in groups.items()}


def case_figures(df: pd.DataFrame, config: GateConfig = GateConfig()) -> dict[tuple, np.ndarray]:
    """Each case's log per-process figures from its working rows (keyed by MATCH_COLUMNS), as the
    test reads them; cases without usable samples in every process are left out. For `bench noise`,
    which asks what the gate could detect on rows like these."""
    prefix = METRICS[config.metric]
    out = {}
    for key, rows in _grouped(_with_timing(with_process(df), config.metric)).items():
        runs = _runs(rows[rows["_works"]], prefix)
        if _usable(runs):
            out[key] = _log_figures(runs, config.figure)
    return out


def _judge_all(measured: list[tuple[CaseResult, np.ndarray, np.ndarray]], config: GateConfig) -> None:
    """Judge every case that has timing statistics. The per-case level is alpha / cases
    (Bonferroni: every case's bar is fixed by the data, not by the order of p-values); each
    case's spread borrows from its framework's typical spread on that machine."""
    own = {id(r): stats.sample_sd(b) for r, b, _ in measured}
    priors = spread_priors([(r.key, b) for r, b, _ in measured], config)
    for r, b, c in measured:
        prior = priors[(r.key["framework"], r.key["machine"])]
        stated = stats.moderated_spread(own[id(r)], b.size - 1, prior.sd, prior.df)
        trimmed = (b.size >= 4) + (c.size >= 4)  # each side of 4+ processes loses its farthest one
        both = stats.moderated_spread(stats.trimmed_pooled_sd(b, c), b.size + c.size - 2 - trimmed, prior.sd, prior.df)
        _judge(r, b, c, stated, both, len(measured), config)


def _machines(df: pd.DataFrame) -> str:
    return ", ".join(sorted(map(str, df["machine"].dropna().unique()))) or "no machine"


def _machines_of(df: pd.DataFrame) -> set[str]:
    return set(map(str, df["machine"].dropna().unique()))


def _matched_groups(baseline: pd.DataFrame, candidate: pd.DataFrame, config: GateConfig,
                    baseline_name: str, candidate_name: str) -> tuple[dict[tuple, pd.DataFrame], dict[tuple, pd.DataFrame]]:
    """Both sides' rows grouped by case, the baseline's cut to the candidate's machines;
    ResultsError when nothing matches. Apart from compare so it reads as match, then judge."""
    machines = _machines_of(candidate)
    on_these = baseline[baseline["machine"].astype(str).isin(machines)]
    if on_these.empty:
        raise ResultsError(
            f"{baseline_name} has no rows for the candidate's machine ({', '.join(sorted(machines)) or 'none'}); "
            f"it holds: {_machines(baseline)}. Make one on that machine with 'make baseline'"
        )
    base_groups = _grouped(_with_timing(on_these, config.metric))
    cand_groups = _grouped(_with_timing(candidate, config.metric), set(base_groups))
    shared = [k for k in base_groups if k in cand_groups]
    if not shared:
        raise ResultsError(
            f"no case in common between {baseline_name} ({_machines(on_these)}) and {candidate_name} "
            f"({_machines(candidate)}): cases match on {', '.join(MATCH_COLUMNS)}"
        )
    return base_groups, cand_groups


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, config: GateConfig = GateConfig(),
            baseline_name: str = "baseline", candidate_name: str = "candidate") -> Comparison:
    """Judge every case of either side. ResultsError when the two sides share no case.

    Baseline rows of machines the candidate did not run on are dropped first: a folder of
    committed baselines (one file per machine) is a valid BASELINE.
    """
    if config.metric not in METRICS:
        raise ResultsError(f"unknown metric {config.metric!r} (choose from: {', '.join(METRICS)})")
    if config.figure not in FIGURES:
        raise ResultsError(f"unknown per-process figure {config.figure!r} (choose from: {', '.join(FIGURES)})")
    prefix = METRICS[config.metric]
    base_groups, cand_groups = _matched_groups(baseline, candidate, config, baseline_name, candidate_name)
    results: list[CaseResult] = []
    measured: list[tuple[CaseResult, np.ndarray, np.ndarray]] = []
    for key in list(base_groups) + [k for k in cand_groups if k not in base_groups]:
        named = dict(zip(MATCH_COLUMNS, key))
        if key not in cand_groups:
            results.append(CaseResult(named, MISSING, baseline_runs=count_processes(base_groups[key])))
            continue
        if key not in base_groups:
            results.append(CaseResult(named, NEW, candidate_runs=count_processes(cand_groups[key])))
            continue
        base, cand = base_groups[key], cand_groups[key]
        judged = _judge_without_statistics(named, base, cand)
        if judged is not None:
            results.append(judged)
            continue
        base = base[base["_works"]]
        result = CaseResult(named, "", baseline_runs=count_processes(base), candidate_runs=count_processes(cand))
        results.append(result)
        base_runs, cand_runs = _runs(base, prefix), _runs(cand, prefix)
        if not (_usable(base_runs) and _usable(cand_runs)):
            result.verdict = INSUFFICIENT
            result.detail = f"fewer than {MIN_SAMPLES_PER_RUN} valid samples in a run: cannot judge"
        elif len(base_runs) < MIN_BASELINE_PROCESSES or len(cand_runs) < MIN_CANDIDATE_PROCESSES:
            result.verdict = INSUFFICIENT
            result.detail = (f"{len(base_runs)} baseline and {len(cand_runs)} candidate processes: the gate needs "
                             f"≥ {MIN_BASELINE_PROCESSES} and ≥ {MIN_CANDIDATE_PROCESSES} fresh processes "
                             "(bench run --processes N) to know the between-process spread")
        else:
            measured.append((result, _log_figures(base_runs, config.figure), _log_figures(cand_runs, config.figure)))
    if measured:
        _judge_all(measured, config)
    order = {v: i for i, v in enumerate(VERDICTS)}
    results.sort(key=lambda r: (order[r.verdict], -abs(math.log(r.ratio)) if r.ratio > 0 else 0.0))
    return Comparison(config, baseline_name, candidate_name, results, notes=setting_notes(baseline, candidate))


def compare_paths(baseline: Iterable[Path | str], candidate: Iterable[Path | str],
                  config: GateConfig = GateConfig()) -> Comparison:
    b, c = list(baseline), list(candidate)
    return compare(load_side(b, "baseline"), load_side(c, "candidate"), config,
                   ", ".join(map(str, b)), ", ".join(map(str, c)))
