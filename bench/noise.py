"""`bench noise`: how noisy is this machine, and how many processes does the gate need here?

The regression gate's unit is the fresh process (docs/processes.md): each process gives a
case one figure, and what the gate can detect follows from how far those figures scatter
between processes on the machine that runs it. That scatter is a property of the machine (a
quiet workstation, a shared CI runner, a GPU host whose processes land in speed states), so
this command measures it there: a few cases in K fresh processes per framework, interleaved
as `bench run --processes K` runs them and timed as `make gate` times them (one thread, a
0.3 s budget, queued), or any results files given instead.

Per case it reports the between-process spread, and then asks the gate's own statistics
(`bench.gate.compare`: the same per-process figure, the same moderated spread and prior,
Bonferroni over the gate's cases; `bench.stats.bar`) what a gate of N baseline and M gate
processes would detect, and how many baseline processes would let the case state 10%.

It sits beside the runner, as `bench ab` does: it runs cases, then reads them as the gate does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bench import measure, stats
from bench.argtypes import UsageError
from bench.gate.compare import (MATCH_COLUMNS, MIN_BASELINE_PROCESSES, UNDETECTABLE, GateConfig, case_figures,
                                spread_priors)
from bench.plan import Case, interleave
from bench.results import ResultsWriter, load_results
from bench.textsafe import markup as escape

DEFAULT_WORKLOADS = ("matmul", "sdpa", "stream")
DEFAULT_PROCESSES = 5
# As the Makefile's BASELINE_PROCESSES and GATE_PROCESSES (tests/test_noise.py reads them there).
DEFAULT_BASELINE = 3
DEFAULT_GATE = 2
DEFAULT_BUDGET_S = 0.3  # as make gate's GATE_RUN_ARGS
DEFAULT_THREADS = 1  # as make gate's GATE_RUN_ARGS
TARGET = 0.10  # the slowdown a case should be able to state
SLOW_STATE = 0.15  # a process this far above its case's median sits in a slow state
MAX_PROCESSES = 100
COVERAGE = 0.9  # "the N needed": the N at which this share of cases states TARGET

DESCRIPTION = """\
How noisy is this machine, and how many processes does the regression gate need here? Runs
a few cases in K fresh processes per framework, timed as 'make gate' times them (or reads
RESULTS instead), and reports each case's between-process spread, the slowdown a gate of
N baseline + M gate processes would detect with it (the gate's own statistics: per-process
figure, moderated spread, Bonferroni over the gate's cases, 90% power), and the number of
baseline processes that would let the case state a 10% slowdown."""

EPILOG = """\
examples:
  bench noise                                 matmul, sdpa, stream of the quick suite, 5 processes
  bench noise -f torch --processes 8          one framework, a better estimate of its spread
  bench noise --baseline 5 --gate 3           what a larger gate would detect here
  bench noise results/baseline-runs/          the spread of runs you already have
  bench noise --cpus 2,3                      the same, every worker bound to two CPUs (Linux)

reading it: 'spread' is the SD of the log per-process figures (as a fraction); 'range' the
fastest to slowest process. 'detects' is the slowdown the gate catches 90% of the time with
--baseline + --gate processes; '10% needs' the baseline processes for 10% with --gate
processes ('—': more gate processes are needed, not more baseline ones).
"""


@dataclass(frozen=True)
class CaseNoise:
    """One case's between-process noise and what the gate could detect with it."""

    label: str
    framework: str
    processes: int
    median_s: float  # median of the per-process figures
    spread: float  # SD of the log per-process figures, as a fraction (exp(sd) - 1)
    range: float  # slowest / fastest process - 1
    slow_processes: int  # processes ≥ SLOW_STATE above the case's median
    sigma: float  # the spread the gate would use (moderated with its framework's), as a log SD
    prior_df: float  # the degrees of freedom that spread borrows
    detectable: float  # the slowdown detected with probability 0.9 by N + M processes, as a fraction
    baseline_needed: int | None  # the fewest baseline processes for ≤ TARGET with M gate processes


@dataclass(frozen=True)
class Sizes:
    """The gate to project onto: its process counts and how many cases it corrects over."""

    baseline: int = DEFAULT_BASELINE
    gate: int = DEFAULT_GATE
    gate_cases: int = 0  # 0: the number of cases measured here


def detectable(sigma: float, prior_df: float, sizes: Sizes, n_cases: int, config: GateConfig, baseline: int | None = None) -> float:
    """The slowdown a gate of `baseline` (default sizes.baseline) + sizes.gate processes detects
    with probability config.power, for a case whose between-process log SD is `sigma`: the bar
    `bench compare` states before a candidate runs (its spread's degrees of freedom are the
    baseline's own n - 1 plus what it borrows)."""
    n = baseline or sizes.baseline
    spread = stats.Spread(sigma, (n - 1) + prior_df, sigma)
    _, _, shift = stats.bar(spread, n, sizes.gate, config.alpha / n_cases, config.power, math.log1p(config.threshold))
    return math.expm1(shift)


def baseline_needed(sigma: float, prior_df: float, sizes: Sizes, n_cases: int, config: GateConfig) -> int | None:
    """The fewest baseline processes (up to MAX_PROCESSES) that let the case state ≤ TARGET with
    sizes.gate gate processes; None when none does (the gate side then limits it). The detectable
    slowdown only falls as baseline processes are added, so a bisection finds it."""
    def states(n: int) -> bool:
        return detectable(sigma, prior_df, sizes, n_cases, config, n) <= TARGET

    low, high = MIN_BASELINE_PROCESSES, MAX_PROCESSES
    if not states(high):
        return None
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if states(mid) else (mid + 1, high)
    return low


def _label(key: Mapping[str, Any]) -> str:
    from bench.summary import describe_params

    return f"{key['framework']}/{key['backend'] or '?'} {key['workload']} {describe_params(key['params'])} {key['dtype']}" \
           + (f" {key['mode']}" if key.get("mode") not in (None, "eager") else "")


def analyse(rows: pd.DataFrame, sizes: Sizes, config: GateConfig = GateConfig()) -> list[CaseNoise]:
    """Each case with at least two processes: its noise and what the gate would detect with it."""
    figures = {key: logs for key, logs in case_figures(rows, config).items() if logs.size >= 2}
    named = [(dict(zip(MATCH_COLUMNS, key)), logs) for key, logs in figures.items()]
    if not named:
        return []
    priors = spread_priors(named, config)
    n_cases = sizes.gate_cases or len(named)
    out = []
    for key, logs in named:
        prior = priors[(key["framework"], key["machine"])]
        own = stats.sample_sd(logs)
        moderated = stats.moderated_spread(own, logs.size - 1, prior.sd, prior.df)
        borrowed = moderated.df - (logs.size - 1)
        out.append(CaseNoise(
            label=_label(key), framework=str(key["framework"]), processes=int(logs.size),
            median_s=float(np.exp(np.median(logs))), spread=math.expm1(own), range=math.expm1(float(np.ptp(logs))),
            slow_processes=int(np.sum(logs - np.median(logs) >= math.log1p(SLOW_STATE))),
            sigma=moderated.sigma, prior_df=borrowed,
            detectable=detectable(moderated.sigma, borrowed, sizes, n_cases, config),
            baseline_needed=baseline_needed(moderated.sigma, borrowed, sizes, n_cases, config)))
    return sorted(out, key=lambda c: (c.framework, -c.spread))


def needed_for_coverage(cases: Sequence[CaseNoise]) -> int | None:
    """The fewest baseline processes with which COVERAGE of the cases state ≤ TARGET (None: no N does)."""
    if not cases:
        return None
    needs = sorted(math.inf if c.baseline_needed is None else c.baseline_needed for c in cases)
    at = needs[max(0, math.ceil(COVERAGE * len(needs)) - 1)]
    return None if math.isinf(at) else int(at)


def summary_lines(cases: Sequence[CaseNoise], sizes: Sizes, n_cases: int) -> list[str]:
    """What the table means in a few sentences: spreads per framework, slow processes, and the
    gate's sensitivity now and with the baseline it would need."""
    lines = []
    by_fw: dict[str, list[float]] = {}
    for c in cases:
        by_fw.setdefault(c.framework, []).append(c.spread)
    lines.append("between-process spread (median · 90th percentile of the cases): " + ", ".join(
        f"{fw} {np.median(s):.1%} · {np.quantile(s, 0.9):.1%}" for fw, s in by_fw.items()))
    slow, total = sum(c.slow_processes for c in cases), sum(c.processes for c in cases)
    lines.append(f"processes ≥ {SLOW_STATE:.0%} above their case's median (a slow state): {slow} of {total}")
    at10 = sum(c.detectable <= TARGET for c in cases)
    at25 = sum(c.detectable <= UNDETECTABLE for c in cases)
    lines.append(f"a gate of {sizes.baseline} baseline + {sizes.gate} gate processes over {n_cases} cases: {at10} of "
                 f"{len(cases)} cases here detect a {TARGET:.0%} slowdown, {at25} a {UNDETECTABLE:.0%} one")
    need = needed_for_coverage(cases)
    lines.append(f"for {COVERAGE:.0%} of these cases to state ≤ {TARGET:.0%} with {sizes.gate} gate processes: "
                 + (f"{need} baseline processes" if need else f"no number of baseline processes up to {MAX_PROCESSES} "
                    "is enough; run more gate processes (--gate)"))
    return lines


def table(cases: Sequence[CaseNoise], sizes: Sizes, title: str) -> Any:
    from rich.table import Table

    from bench.fmt import fmt_time

    t = Table(title=title, header_style="bold")
    for col in ("case", "procs", "median", "spread", "range", f"detects ({sizes.baseline}+{sizes.gate})", "10% needs"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for c in cases:
        t.add_row(escape(c.label), str(c.processes), fmt_time(c.median_s), f"{c.spread:.1%}", f"{c.range:.1%}",
                  f"{c.detectable:.0%}", "—" if c.baseline_needed is None else str(c.baseline_needed))
    return t


# -- running the cases ---------------------------------------------------------------------
def gate_case_count(frameworks: Sequence[str]) -> int:
    """How many cases `make gate` compares for these frameworks: the quick suite's, every workload,
    dtype and mode (the number Bonferroni's correction divides alpha by)."""
    from bench.catalog import DTYPES, WORKLOADS
    from bench.plan import plan
    from workloads.base import MODES

    return len(plan(list(frameworks), list(WORKLOADS), list(DTYPES), "quick", modes=MODES))


def run_cases(args: Any, cases: Sequence[Case], out: Path, run_id: str, console: Any) -> pd.DataFrame:
    """`cases` in args.processes fresh processes per framework, interleaved, timed as make gate times."""
    from bench.catalog import FRAMEWORKS
    from bench.runner import Runner, RunConfig

    config = RunConfig(suite=args.suite, device=args.device, threads=args.threads, timings=("queued",), cpus=args.cpus,
                       protocol=measure.Protocol(budget_s=args.budget, energy=False))
    planned = interleave(cases, args.processes,
                         environment=lambda c: tuple(sorted(FRAMEWORKS[c.framework].worker_env(c.dtype, args.device).items())))
    writer = ResultsWriter(out / f"{run_id}.parquet")
    left = Counter((c.framework, c.process) for c in planned)

    def on_row(case: Case, row: Mapping[str, Any]) -> None:
        left[(case.framework, case.process)] -= 1
        if not left[(case.framework, case.process)]:
            console.print(escape(f"{case.framework}: process {case.process + 1} of {args.processes} done"))

    Runner(config, writer, run_id, on_row=on_row).run(planned)
    return pd.DataFrame(writer.rows)


def _planned(args: Any) -> list[Case]:
    from bench.catalog import DTYPES, FRAMEWORKS, params_grid
    from bench.plan import plan
    from workloads.base import MODES

    workloads = list(dict.fromkeys(args.workload or DEFAULT_WORKLOADS))
    grid = params_grid(workloads, args.params)
    cases = plan(list(dict.fromkeys(args.framework or FRAMEWORKS)), workloads, list(dict.fromkeys(args.dtype or DTYPES)),
                 args.suite, grid, modes=MODES)
    if not cases:
        raise UsageError(f"no cases: none of the workloads {', '.join(workloads)} defines the dtype(s) asked for")
    return cases


def cmd_noise(args: Any, console: Any) -> int:
    """`bench noise` (its options: bench.cli.add_noise_parser). Exit 0 with the table, 2 when no
    case has two processes with usable figures."""
    from bench.runner import new_run_id

    if args.paths:
        rows = load_results(args.paths)
        source = ", ".join(map(str, args.paths))
    else:
        cases = _planned(args)
        run_id = args.run_id or f"noise-{new_run_id()}"
        frameworks = list(dict.fromkeys(c.framework for c in cases))
        console.print(escape(f"noise: {len(cases)} cases × {args.processes} fresh processes per framework "
                             f"({', '.join(frameworks)}), --threads {args.threads} --budget {args.budget:g}, queued"))
        with tempfile.TemporaryDirectory(prefix="bench-noise-") as scratch:
            rows = run_cases(args, cases, args.out or Path(scratch), run_id, console)
        source = f"run {run_id}" + (f" → {args.out / (run_id + '.parquet')}" if args.out else "")
    config = GateConfig(figure=args.figure)
    frameworks = sorted(set(rows["framework"].dropna())) if "framework" in rows else []
    sizes = Sizes(args.baseline, args.gate, args.gate_cases or gate_case_count(frameworks))
    found = analyse(rows, sizes, config) if len(rows) else []
    if not found:
        console.print(escape(f"{source}: no case has two or more processes with usable timings "
                             f"(noise needs --processes 2 or more; statuses: {_statuses(rows)})"))
        return 2
    console.print(table(found, sizes, escape(f"between-process noise, {source} (per-process figure: {config.figure})")))
    for line in summary_lines(found, sizes, sizes.gate_cases or len(found)):
        console.print(escape(line))
    if args.json:
        from bench import safe_write

        safe_write.write_text(args.json, json.dumps({"sizes": asdict(sizes), "figure": config.figure,
                                                     "cases": [asdict(c) for c in found]}, indent=1))
    return 0


def _statuses(rows: pd.DataFrame) -> str:
    if "status" not in rows or rows.empty:
        return "no rows"
    return ", ".join(f"{n} {s}" for s, n in rows["status"].value_counts().items())
