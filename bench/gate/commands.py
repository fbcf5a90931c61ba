"""The gate's commands — compare, ab, baseline, export — kept apart from cli.py's run/show.

`bench.cli` registers these parsers and dispatches to the `cmd_*` functions; bad input
raises ResultsError or UsageError-style argparse errors, which the CLI turns into one
line and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.gate.baseline import BASELINE_DIR, write_baselines
from bench.gate.compare import FIGURES, METRICS, Comparison, GateConfig, compare, compare_paths, load_side, parse_threshold
from bench.results import ResultsError, load_results

DEFAULT_AB_ROUNDS = 5
DEFAULT_AB_BUDGET = 0.3  # per case and timing kind: one process's figure needs few samples; the process count matters


def _threshold(text: str) -> float:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env_spec(text: str) -> tuple[str, str]:
    from bench.gate.ab import parse_env_spec

    try:
        return parse_env_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(resolver: Any) -> Any:
    def parse(text: str) -> list[str]:
        try:
            return [resolver(item) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_verdict_options(p: argparse.ArgumentParser) -> None:
    """Options shared by compare and ab: the same statistics, the same outputs."""
    p.add_argument("--threshold", type=_threshold, default=GateConfig.threshold, metavar="PCT",
                   help="floor: smallest change that counts, e.g. 5%% or 0.05; each case's own bar, from its "
                   f"between-process spread, may be higher (default {GateConfig.threshold * 100:g}%%)")
    p.add_argument("--metric", choices=tuple(METRICS), default="median_s",
                   help="which timing: the headline (median_s) or latency/queued explicitly (default median_s)")
    p.add_argument("--figure", choices=tuple(FIGURES), default=GateConfig.figure,
                   help="each process's figure per case: its fastest sample (min: steadiest on a shared runner) or "
                   f"its median (default {GateConfig.figure})")
    p.add_argument("--alpha", type=float, default=GateConfig.alpha,
                   help=f"family-wise false-alarm level over all cases (default {GateConfig.alpha})")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write a Markdown summary (CI job summary)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every case as JSON")


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "compare", help="the regression gate: baseline vs candidate results (exit 1 on a regression)",
        description="Compare two sets of runs case by case; each run is one process, the unit of the test. "
        "Exit 0: no regression; 1: a case is significantly slower beyond its bar, now failing, or its measured "
        "precision changed; 2: cannot judge (bad input, too few processes or samples).")
    c.add_argument("baseline", type=Path, nargs=1, metavar="BASELINE",
                   help=f"parquet file or folder of runs, e.g. {BASELINE_DIR}/ (only the candidate's machines are used)")
    c.add_argument("candidate", type=Path, nargs="+", metavar="CANDIDATE", help="parquet file(s) or folder of runs")
    _add_verdict_options(c)

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
    ab.add_argument("-f", "--framework", type=_names(resolve_framework), action="extend", metavar="NAMES",
                    help="frameworks to run (default: those named in --a/--b)")
    ab.add_argument("-w", "--workload", type=_names(resolve_workload), action="extend", metavar="NAMES",
                    help="comma-separated (default: all)")
    ab.add_argument("-d", "--dtype", type=_names(lambda t: resolve_choice("dtype", t, DTYPES)), action="extend",
                    metavar="NAMES", help="comma-separated (default: every dtype the workload defines)")
    ab.add_argument("--suite", choices=SUITES, default="quick", help="default quick")
    ab.add_argument("--rounds", type=_at_least_one, default=DEFAULT_AB_ROUNDS,
                    help=f"processes per side, alternating (default {DEFAULT_AB_ROUNDS})")
    ab.add_argument("--threads", type=_at_least_one, default=1,
                    help="intra-op threads (default 1: a neighbour's load then costs a core, not a 5-100x stall)")
    ab.add_argument("--budget", type=_positive, default=DEFAULT_AB_BUDGET, metavar="SECONDS",
                    help=f"sampling time per case and timing kind in each process (default {DEFAULT_AB_BUDGET})")
    ab.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="default auto")
    ab.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                    help="where the runs go (default results/ab/<timestamp>/)")
    _add_verdict_options(ab)

    b = sub.add_parser(
        "baseline", help=f"turn stored runs into {BASELINE_DIR}/<machine>.parquet (make baseline runs them)",
        description="Make or refresh the committed baselines from stored runs: every run becomes one process of "
        "its machine's baseline, so pass several (make baseline runs the quick suite BASELINE_RUNS times).")
    b.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of runs")
    b.add_argument("--dir", type=Path, default=BASELINE_DIR, help=f"baseline folder (default {BASELINE_DIR})")

    e = sub.add_parser("export", help="write results in another tool's format (pytest-benchmark JSON)",
                       description="Export results so other tools can read them, e.g. "
                       "'pytest-benchmark compare FILE.json'.")
    e.add_argument("--pytest-benchmark", type=Path, required=True, metavar="FILE", help="JSON file to write")
    e.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of them")


def _config(args: argparse.Namespace) -> GateConfig:
    return GateConfig(threshold=args.threshold, alpha=args.alpha, metric=args.metric, figure=args.figure)


def _report(result: Comparison, args: argparse.Namespace, console: Console) -> int:
    from bench.gate.output import rich_table, write_json, write_markdown

    console.print(rich_table(result))
    if args.markdown:
        write_markdown(result, args.markdown)
    if args.json:
        write_json(result, args.json)
    console.print(result.headline)
    return result.exit_code


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    return _report(compare_paths(args.baseline, args.candidate, _config(args)), args, console)


def cmd_ab(args: argparse.Namespace, console: Console) -> int:
    from bench import measure
    from bench.catalog import DTYPES, FRAMEWORKS, WORKLOADS
    from bench.gate.ab import Side, run_interleaved
    from bench.runner import RunConfig, new_run_id, plan

    a, b = dict(args.a), dict(args.b)
    frameworks = list(dict.fromkeys(args.framework or [fw for fw in FRAMEWORKS if fw in a or fw in b]))
    cases = plan(frameworks, list(dict.fromkeys(args.workload or WORKLOADS)),
                 list(dict.fromkeys(args.dtype or DTYPES)), args.suite)
    if not cases:
        raise ResultsError("no cases: the workloads define none of the dtypes asked for")
    stamp = new_run_id()
    out = args.out or Path("results") / "ab" / stamp
    protocol = measure.Protocol(budget_s=args.budget)
    sides = [Side(name, RunConfig(suite=args.suite, device=args.device, threads=args.threads, protocol=protocol,
                                  pythons=envs)) for name, envs in (("a", a), ("b", b))]
    console.print(f"ab: {len(cases)} cases of {', '.join(frameworks)}, {args.rounds} rounds of "
                  f"{' '.join(s.describe() for s in sides)}, alternating → {out}")
    files = run_interleaved(sides, cases, args.rounds, out, stamp,
                            on_run=lambda side, i, path: console.print(f"round {i}/{args.rounds}: {side.name} → {path}"))
    result = compare(load_side(files["a"], "A"), load_side(files["b"], "B"), _config(args),
                     f"A {sides[0].describe()}", f"B {sides[1].describe()}")
    return _report(result, args, console)


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    for path in write_baselines(args.paths, args.dir):
        console.print(f"baseline written: {path} — commit it so CI gates against it")
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from bench.gate.export import write_pytest_benchmark

    df = load_results(args.paths)
    if df.empty:
        raise ResultsError(f"no result rows in {', '.join(map(str, args.paths))}")
    n = write_pytest_benchmark(df, args.pytest_benchmark)
    console.print(f"{n} benchmarks → {args.pytest_benchmark} (read with: pytest-benchmark compare {args.pytest_benchmark})")
    return 0


COMMANDS = {"compare": cmd_compare, "ab": cmd_ab, "baseline": cmd_baseline, "export": cmd_export}
