"""The gate's commands — compare, baseline, export — kept apart from cli.py's run/show.

`bench.cli` registers these parsers and dispatches to the `cmd_*` functions; bad input
raises ResultsError or UsageError-style argparse errors, which the CLI turns into one
line and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.gate.baseline import BASELINE_DIR, baseline_path, write_baselines
from bench.paths import output_dir_problem, output_file_problem
from bench.gate.compare import METRICS, GateConfig, compare_paths, parse_threshold
from bench.results import ResultsError, load_results

DEFAULT_BASELINE_RUNS = 3


def _threshold(text: str) -> float:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _alpha(text: str) -> float:
    """A significance level strictly between 0 and 1. NaN once made every comparison false,
    so the gate passed a 1.5× slowdown; 2 made everything significant, -1 nothing."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected a level between 0 and 1 (exclusive), e.g. 0.05, got {text!r}")
    return value


def _runs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of runs, got {text!r}")
    return value


def _output_file(text: str) -> Path:
    problem = output_file_problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def _output_dir(text: str) -> Path:
    problem = output_dir_problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "compare", help="the regression gate: baseline vs candidate results (exit 1 on a regression)",
        description="Compare two sets of results case by case. Exit 0: no regression; 1: a case is significantly "
        "slower beyond the threshold, now failing, or its measured precision changed; 2: cannot judge "
        "(bad input, too few samples).")
    c.add_argument("baseline", type=Path, nargs=1, metavar="BASELINE", help="parquet file or folder of runs")
    c.add_argument("candidate", type=Path, nargs="+", metavar="CANDIDATE", help="parquet file(s) or folder of runs")
    c.add_argument("--threshold", type=_threshold, default=GateConfig.threshold, metavar="PCT",
                   help=f"smallest change that counts, e.g. 5%% or 0.05 (default {GateConfig.threshold * 100:g}%%)")
    c.add_argument("--metric", choices=tuple(METRICS), default="median_s",
                   help="which timing: the headline (median_s) or latency/queued explicitly (default median_s)")
    c.add_argument("--alpha", type=_alpha, default=GateConfig.alpha,
                   help=f"family-wise false-alarm level over all cases (default {GateConfig.alpha})")
    c.add_argument("--markdown", type=_output_file, metavar="FILE", help="also write a Markdown summary (CI job summary)")
    c.add_argument("--json", type=_output_file, metavar="FILE", help="also write every case as JSON")

    b = sub.add_parser(
        "baseline", help=f"write {BASELINE_DIR}/<machine>.parquet from results, or by running the quick suite",
        description="Make or refresh this machine's committed baseline. With RESULTS, those runs become the baseline; "
        f"without, the quick suite runs --runs times (default {DEFAULT_BASELINE_RUNS}) so the gate can see each case's "
        "run-to-run noise.")
    b.add_argument("paths", nargs="*", type=Path, metavar="RESULTS", help="parquet files or folders of runs")
    b.add_argument("--runs", type=_runs, default=DEFAULT_BASELINE_RUNS, help="quick-suite runs when no RESULTS are given")
    b.add_argument("-f", "--framework", default=None, metavar="NAMES", help="passed to 'bench run'")
    b.add_argument("--budget", default=None, metavar="SECONDS", help="passed to 'bench run'")
    b.add_argument("--dir", type=_output_dir, default=BASELINE_DIR, help=f"baseline folder (default {BASELINE_DIR})")
    b.add_argument("--print-path", action="store_true", help="print this machine's baseline path and exit")

    e = sub.add_parser("export", help="write results in another tool's format (pytest-benchmark JSON)",
                       description="Export results so other tools can read them, e.g. "
                       "'pytest-benchmark compare FILE.json'.")
    e.add_argument("--pytest-benchmark", type=_output_file, required=True, metavar="FILE", help="JSON file to write")
    e.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of them")


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from bench.gate.output import rich_table, write_json, write_markdown

    config = GateConfig(threshold=args.threshold, alpha=args.alpha, metric=args.metric)
    result = compare_paths(args.baseline, args.candidate, config)
    console.print(rich_table(result))
    if args.markdown:
        write_markdown(result, args.markdown)
    if args.json:
        write_json(result, args.json)
    console.print(result.headline)
    if result.exit_code == 2:  # "cannot judge" is also said on stderr, in one line, as every exit 2 is
        sys.stderr.write(f"bench compare: {result.headline}\n")
    return result.exit_code


def _this_machine() -> str:
    from bench.machine import machine_info

    return str(machine_info()["machine"])


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    if args.print_path:
        print(baseline_path(_this_machine(), args.dir))
        return 0
    paths = list(args.paths)
    if not paths:
        from bench.cli import main as bench_main
        from bench.runner import new_run_id

        stamp = new_run_id()
        for i in range(1, args.runs + 1):
            run_args = ["run", "--suite", "quick", "--out", "results", "--run-id", f"baseline-{stamp}-{i}"]
            run_args += ["--framework", args.framework] if args.framework else []
            run_args += ["--budget", args.budget] if args.budget else []
            console.print(f"baseline run {i} of {args.runs}")
            code = bench_main(run_args)
            if code != 0:
                return code
            paths.append(Path("results") / f"baseline-{stamp}-{i}.parquet")
    for path in write_baselines(paths, args.dir):
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


COMMANDS = {"compare": cmd_compare, "baseline": cmd_baseline, "export": cmd_export}
