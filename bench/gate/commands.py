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
from bench.textsafe import markup as escape  # file text: no markup, no terminal escapes

from bench.gate.baseline import BASELINE_DIR, write_baselines
from bench import safe_write
from bench.argtypes import new_output_file
from bench.paths import output_dir_problem
from bench.gate.compare import FIGURES, METRICS, Comparison, GateConfig, compare_paths, parse_threshold
from bench.results import ResultsError, load_results

DEFAULT_AB_ROUNDS = 5
DEFAULT_AB_BUDGET = 0.3  # per case and timing kind: one process's figure needs few samples; the process count matters


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


def names_of(resolver: Any) -> Any:
    def parse(text: str) -> list[str]:
        try:
            return [resolver(item) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _output_dir(text: str) -> Path:
    problem = output_dir_problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def add_verdict_options(p: argparse.ArgumentParser) -> None:
    """Options shared by compare and ab: the same statistics, the same outputs."""
    p.add_argument("--threshold", type=_threshold, default=GateConfig.threshold, metavar="PCT",
                   help="floor: smallest change that counts, e.g. 5%% or 0.05; each case's own bar, from its "
                   f"between-process spread, may be higher (default {GateConfig.threshold * 100:g}%%)")
    p.add_argument("--metric", choices=tuple(METRICS), default="median_s",
                   help="which timing: the headline (median_s) or latency/queued explicitly (default median_s)")
    p.add_argument("--figure", choices=tuple(FIGURES), default=GateConfig.figure,
                   help="each process's figure per case: its fastest sample (min: steadiest on a shared runner) or "
                   f"its median (default {GateConfig.figure})")
    p.add_argument("--alpha", type=_alpha, default=GateConfig.alpha,
                   help=f"family-wise false-alarm level over all cases (default {GateConfig.alpha})")
    p.add_argument("--spread", choices=("both", "baseline"), default="both",
                   help="the bar from both sides' between-process spread, whichever is wider (both), or from the "
                   "baseline's alone (baseline: what make gate's first look uses before confirming alarms; default both)")
    p.add_argument("--markdown", type=new_output_file, metavar="FILE", help="also write a Markdown summary (CI job summary)")
    p.add_argument("--json", type=new_output_file, metavar="FILE", help="also write every case as JSON")


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "compare", help="the regression gate: baseline vs candidate results (exit 1 on a regression)",
        description="Compare two sets of runs case by case; each fresh process (bench run --processes N; a run "
        "without the process column is one), counted once, is the unit of the test. "
        "Exit 0: no regression; 1: a case is significantly slower beyond its bar, now failing, or its measured "
        "precision changed; 2: cannot judge (bad input, too few processes or samples).")
    c.add_argument("baseline", type=Path, nargs=1, metavar="BASELINE",
                   help=f"parquet file or folder of runs, e.g. {BASELINE_DIR}/ (only the candidate's machines are used)")
    c.add_argument("candidate", type=Path, nargs="+", metavar="CANDIDATE", help="parquet file(s) or folder of runs")
    add_verdict_options(c)


    b = sub.add_parser(
        "baseline", help=f"turn stored runs into {BASELINE_DIR}/<machine>.parquet (make baseline runs them)",
        description="Make or refresh the committed baselines from stored runs: every process of every run (each "
        "counted once, however often it is named) becomes one process of its machine's baseline "
        "(make baseline runs the quick suite with --processes BASELINE_PROCESSES).")
    b.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of runs")
    b.add_argument("--dir", type=_output_dir, default=BASELINE_DIR, help=f"baseline folder (default {BASELINE_DIR})")

    e = sub.add_parser("export", help="write results in another tool's format (pytest-benchmark JSON)",
                       description="Export results so other tools can read them, e.g. "
                       "'pytest-benchmark compare FILE.json'.")
    e.add_argument("--pytest-benchmark", type=new_output_file, required=True, metavar="FILE", help="JSON file to write")
    e.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of them")


def config_from_args(args: argparse.Namespace) -> GateConfig:
    return GateConfig(threshold=args.threshold, alpha=args.alpha, metric=args.metric, figure=args.figure,
                      candidate_spread=args.spread == "both")


def check_outputs(args: argparse.Namespace, inputs: list[Path]) -> None:
    """--markdown/--json that name an input (`bench compare A B --json B`) are refused before
    the comparison, not after it has replaced a measured run."""
    for path in (args.markdown, args.json):
        if path is not None:
            safe_write.check(path, inputs)
    if args.markdown is not None and args.json is not None and safe_write.same_file(args.markdown, args.json):
        raise safe_write.OutputRefused(f"--markdown and --json both name {args.json}: choose two files")


def report_comparison(result: Comparison, args: argparse.Namespace, console: Console,
                      inputs: list[Path] | None = None) -> int:
    from bench.gate.output import rich_table, write_json, write_markdown

    console.print(rich_table(result))
    if args.markdown:
        write_markdown(result, args.markdown, inputs or ())
    if args.json:
        write_json(result, args.json, inputs or ())
    for note in result.notes:  # settings that differ between the sides (threads, CPUs): said beside the verdict
        console.print(escape(f"warning: {note}"))  # stdout: an exit 2 keeps its one stderr line
    console.print(result.headline)
    if result.exit_code == 2:  # "cannot judge" is also said on stderr, in one line, as every exit 2 is
        sys.stderr.write(f"bench compare: {result.headline}\n")
    return result.exit_code


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    inputs = [*args.baseline, *args.candidate]
    check_outputs(args, inputs)
    return report_comparison(compare_paths(args.baseline, args.candidate, config_from_args(args)), args, console, inputs)


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    for path in write_baselines(args.paths, args.dir):
        console.print(escape(f"baseline written: {path} — commit it so CI gates against it"))
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from bench.gate.export import write_pytest_benchmark

    safe_write.check(args.pytest_benchmark, args.paths)  # `export --pytest-benchmark R.parquet R.parquet` once replaced the run
    df = load_results(args.paths)
    if df.empty:
        raise ResultsError(f"no result rows in {', '.join(map(str, args.paths))}")
    n = write_pytest_benchmark(df, args.pytest_benchmark, args.paths)
    console.print(escape(f"{n} benchmarks → {args.pytest_benchmark} (read with: pytest-benchmark compare {args.pytest_benchmark})"))
    return 0


COMMANDS = {"compare": cmd_compare, "baseline": cmd_baseline, "export": cmd_export}
