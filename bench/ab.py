"""Interleaved A/B: the same cases under two environments, alternating fresh processes.

The question a Mac user asks before upgrading (torch 2.13 → 2.15, jax-metal → jax-mps) is
"is B slower than A on my machine?". Measuring A for ten minutes and then B for ten lets
whatever drifts in between (a neighbour's job, thermals, a background index) pass for a
difference. So the two sides alternate, A B A B …: each round runs the cases once under A
and once under B, each run in fresh worker processes, and drift lands on both sides
alike. The per-process figures then go through exactly the statistics of `bench compare`
(`bench.gate.compare`), with A as the baseline and B as the candidate.

It sits beside the runner, above the gate: it runs cases (bench.runner) and then judges them
(bench.gate), which the gate itself never does; `bench ab` is registered by the CLI from here.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rich.console import Console

from bench.argtypes import positive_float, positive_int
from bench.catalog import FRAMEWORKS, FrameworkSpec, resolve_framework
from bench.results import ResultsWriter
from bench.gate import commands
from bench.gate.compare import compare, load_side
from bench.results import ResultsError
from bench.runner import Case, Runner, RunConfig


@dataclass(frozen=True)
class Side:
    """One environment: a name for files and tables, and the run configuration
    (whose `pythons` say which interpreter each framework's worker uses)."""

    name: str
    config: RunConfig

    def describe(self) -> str:
        envs = ", ".join(f"{fw}={path}" for fw, path in sorted(self.config.pythons.items()))
        return f"{self.name} ({envs or 'this interpreter'})"


def parse_env_spec(text: str) -> tuple[str, str]:
    """'torch=/path/to/python' → ('torch', '/path/to/python'); ValueError naming what is wrong."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise ValueError(f"expected FRAMEWORK=/path/to/python, got {text!r}")
    framework = resolve_framework(name)  # ValueError naming the frameworks
    python = Path(path).expanduser()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise ValueError(f"{framework}={path}: not an executable interpreter")
    return framework, str(python)


RunOnce = Callable[[RunConfig, Sequence[Case], Path, str], None]


def run_suite_once(config: RunConfig, cases: Sequence[Case], path: Path, run_id: str,
                   frameworks: Mapping[str, FrameworkSpec] = FRAMEWORKS) -> None:
    """One run of `cases` in fresh worker processes (a new Runner starts its own workers
    and stops them when it returns), written to `path`."""
    Runner(config, ResultsWriter(path), run_id, frameworks=frameworks).run(cases)


def run_interleaved(sides: Sequence[Side], cases: Sequence[Case], rounds: int, out_dir: Path, stamp: str,
                    run_once: RunOnce | None = None,
                    on_run: Callable[[Side, int, Path], None] | None = None) -> dict[str, list[Path]]:
    """Runs every side once per round, in the order given, for `rounds` rounds (A B A B …).

    Returns each side's result files. A process is the unit the gate tests, so each run
    must start its own workers: `run_once` (default `run_suite_once`) is called afresh for
    every (round, side).
    """
    run_once = run_once or run_suite_once
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    files: dict[str, list[Path]] = {side.name: [] for side in sides}
    for i in range(1, rounds + 1):
        for side in sides:
            path = out_dir / f"{side.name}-{i}.parquet"
            if on_run:
                on_run(side, i, path)
            run_once(side.config, cases, path, f"{stamp}-{side.name}-{i}")
            files[side.name].append(path)
    return files


# -- the command line ------------------------------------------------------------------------
def _env_spec(text: str) -> tuple[str, str]:
    try:
        return parse_env_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rounds(text: str) -> int:
    """At least as many rounds as the gate needs baseline processes: fewer ran every round
    and then could only say CANNOT JUDGE, which is known before any work."""
    from bench.gate.compare import MIN_BASELINE_PROCESSES

    value = positive_int(text)
    if value < MIN_BASELINE_PROCESSES:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_BASELINE_PROCESSES} rounds (the gate needs "
                                         f"{MIN_BASELINE_PROCESSES} processes of A to know its spread), got {text!r}")
    return value


def planned_files(sides: Sequence[Side], rounds: int, out_dir: Path) -> list[Path]:
    """The files `run_interleaved` will write, in order: checked before the first round."""
    return [out_dir / f"{side.name}-{i}.parquet" for i in range(1, rounds + 1) for side in sides]


def add_parser(sub: Any) -> None:
    """`bench ab`: its options, then the same verdict options as `bench compare`."""
    from bench.catalog import DEVICE_CHOICES, DTYPES, SUITES, resolve_choice, resolve_framework, resolve_workload

    ab = sub.add_parser(
        "ab", help="interleaved A/B: the same cases under two interpreters, alternating processes",
        description="Run the same cases under environment A and environment B, alternating fresh processes "
        f"(A B A B …, --rounds each), then judge B against A with the statistics of 'bench compare'. "
        "Example: bench ab --a torch=~/venv-2.13/bin/python --b torch=~/venv-2.15/bin/python -w matmul,sdpa")
    ab.add_argument("--a", type=_env_spec, action="append", required=True, metavar="FW=PATH",
                    help="a framework's interpreter on side A, the baseline (repeatable)")
    ab.add_argument("--b", type=_env_spec, action="append", required=True, metavar="FW=PATH",
                    help="a framework's interpreter on side B, the candidate (repeatable)")
    ab.add_argument("-f", "--framework", type=commands.names_of(resolve_framework), action="extend", metavar="NAMES",
                    help="frameworks to run (default: those named in --a/--b)")
    ab.add_argument("-w", "--workload", type=commands.names_of(resolve_workload), action="extend", metavar="NAMES",
                    help="comma-separated (default: all)")
    ab.add_argument("-d", "--dtype", type=commands.names_of(lambda t: resolve_choice("dtype", t, DTYPES)), action="extend",
                    metavar="NAMES", help="comma-separated (default: every dtype the workload defines)")
    ab.add_argument("--suite", choices=SUITES, default="quick", help="default quick")
    ab.add_argument("--rounds", type=_rounds, default=commands.DEFAULT_AB_ROUNDS,
                    help=f"processes per side, alternating (default {commands.DEFAULT_AB_ROUNDS})")
    ab.add_argument("--threads", type=positive_int, default=1,
                    help="intra-op threads (default 1: a neighbour's load then costs a core, not a 5-100x stall)")
    ab.add_argument("--budget", type=positive_float, default=commands.DEFAULT_AB_BUDGET, metavar="SECONDS",
                    help=f"sampling time per case and timing kind in each process (default {commands.DEFAULT_AB_BUDGET})")
    ab.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default auto")
    ab.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                    help="where the runs go (default results/ab/<timestamp>/)")
    commands.add_verdict_options(ab)


def cmd_ab(args: argparse.Namespace, console: Console) -> int:
    from bench import measure
    from bench.catalog import DTYPES, FRAMEWORKS, WORKLOADS
    from bench.runner import RunConfig, new_run_id, plan
    from workloads.base import MODES

    a, b = dict(args.a), dict(args.b)
    frameworks = list(dict.fromkeys(args.framework or [fw for fw in FRAMEWORKS if fw in a or fw in b]))
    # Every mode, as `bench run` plans by default: the compiled train_step/lora/generate cases are
    # what an upgrade is likely to change.
    cases = plan(frameworks, list(dict.fromkeys(args.workload or WORKLOADS)),
                 list(dict.fromkeys(args.dtype or DTYPES)), args.suite, modes=MODES)
    if not cases:
        raise ResultsError("no cases: the workloads define none of the dtypes asked for")
    stamp = new_run_id()
    out = args.out or Path("results") / "ab" / stamp
    protocol = measure.Protocol(budget_s=args.budget, energy=False)  # ab judges speed: no energy window
    # Only the timing kind the verdicts read is measured: latency for --metric latency_median_s,
    # else queued (the headline median_s, as the suite measures every case): a fifth less per run.
    timings = ("latency",) if args.metric == "latency_median_s" else ("queued",)
    sides = [Side(name, RunConfig(suite=args.suite, device=args.device, threads=args.threads, timings=timings,
                                  protocol=protocol, pythons=envs)) for name, envs in (("a", a), ("b", b))]
    taken = [p for p in planned_files(sides, args.rounds, out) if p.exists() or p.is_symlink()]
    if taken:  # found after N-1 rounds, with advice about a --run-id ab does not have, until this
        raise ResultsError(f"{taken[0]} already exists: choose an empty -o folder (ab writes "
                           f"{', '.join(p.name for p in planned_files(sides, 1, out))} … there)")
    console.print(f"ab: {len(cases)} cases of {', '.join(frameworks)}, {args.rounds} rounds of "
                  f"{' '.join(s.describe() for s in sides)}, alternating → {out}")
    files = run_interleaved(sides, cases, args.rounds, out, stamp,
                            on_run=lambda side, i, path: console.print(f"round {i}/{args.rounds}: {side.name} → {path}"))
    result = compare(load_side(files["a"], "A"), load_side(files["b"], "B"), commands.config_from_args(args),
                     f"A {sides[0].describe()}", f"B {sides[1].describe()}")
    return commands.report_comparison(result, args, console)


