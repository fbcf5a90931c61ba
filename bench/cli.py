"""The `bench` command line: list, env, run, show, doctor, ...

Bad input never produces a traceback: one line naming the valid choices, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import doctor, measure
from bench.fmt import fmt_num, fmt_time
from bench.catalog import (
    DEVICE_CHOICES,
    DTYPES,
    FRAMEWORKS,
    SUITES,
    TIMINGS,
    WORKLOADS,
    parse_params,
    resolve_choice,
    resolve_framework,
    resolve_workload,
)
from bench.gate import commands as gate_cli
from bench.plan import Case, plan
from bench.results import ResultsError, ResultsWriter, load_results
from bench.runner import Runner, RunConfig, new_run_id, run_references
from bench.summary import best_available, describe_params, rank
from workloads.base import MODES

EXIT_USAGE = 2

RUN_EPILOG = """\
examples:
  bench run                                   quick suite, every installed framework
  bench run --framework mlx --workload sdpa   one framework, one workload
  bench run -f torch,jax -d fp32,bf16 --device cuda --suite full
  bench run --python mlx=~/venvs/mlx/bin/python   a framework from its own environment
  bench run --timing latency --threads 4

timings: 'latency' is one call followed by the framework's completion barrier (what a
single synchronous request sees); 'queued' is k calls issued back to back and closed by
one barrier (the steady state of a model). median_s, tflops and gbps use queued when it
was measured, else latency; the `timing` column says which.
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and exit with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def _list_of(resolver: Any) -> Any:
    def parse(text: str) -> list[str]:
        try:
            return [resolver(item) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _choice(kind: str, choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> str:
        try:
            return resolve_choice(kind, text, choices)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _python_map(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected FRAMEWORK=/path/to/python, got {text!r}")
    try:
        return resolve_framework(name), str(Path(path).expanduser())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench",
        description="metalbench: like-for-like benchmarks of PyTorch, TensorFlow, JAX and MLX "
        "on Apple Silicon (Metal), CUDA and CPU.",
        epilog="Start with 'bench list', then 'bench run'. Each command has --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="workloads, dtypes, suites, frameworks and devices", description="Show what can be run.")
    env = sub.add_parser("env", help="this machine and what each framework finds on it",
                         description="Start each framework in a worker and report its backend, device and versions.")
    env.add_argument("--device", type=_choice("device", DEVICE_CHOICES), default="auto")
    env.add_argument("--python", type=_python_map, action="append", default=[], metavar="FW=PATH")

    run = sub.add_parser("run", help="run benchmarks and write results/<run-id>.parquet",
                         description="Run workloads through framework adapters, one worker process per framework.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-f", "--framework", type=_list_of(resolve_framework), action="extend", metavar="NAMES",
                     help=f"comma-separated; default all: {', '.join(FRAMEWORKS)}")
    run.add_argument("-w", "--workload", type=_list_of(resolve_workload), action="extend", metavar="NAMES",
                     help=f"comma-separated; default all: {', '.join(WORKLOADS)}")
    run.add_argument("-d", "--dtype", type=_list_of(lambda t: resolve_choice("dtype", t, DTYPES)), action="extend",
                     metavar="NAMES", help=f"comma-separated; default every dtype the workload defines: {', '.join(DTYPES)}")
    run.add_argument("-p", "--params", action="append", default=[], metavar="K=V,...",
                     help="run these parameters instead of the suite's grid, e.g. m=4096,n=4096,k=4096 "
                     "(repeatable; needs exactly one --workload)")
    run.add_argument("--model", type=Path, default=None, metavar="DIR",
                     help="generate only: a local Hugging Face Llama checkpoint (config.json + *.safetensors) "
                     "whose architecture and weights replace the cases' (never downloads)")
    run.add_argument("--suite", type=_choice("suite", SUITES), default="quick",
                     help="quick: finishes in minutes on a laptop CPU; full: sizes that fill a GPU (default quick)")
    run.add_argument("--device", type=_choice("device", DEVICE_CHOICES), default="auto",
                     help="auto: metal on Apple Silicon, else cuda where present, else cpu. "
                     "A backend that is not there is an error for the case, never a fallback")
    run.add_argument("--mode", type=_list_of(lambda t: resolve_choice("mode", t.strip(), MODES)), action="extend", metavar="MODES",
                     help="eager, compiled or both, comma-separated (default both). train_step, lora and generate run "
                     "in each (compiled: torch.compile, mx.compile, tf.function(jit_compile=True), jax.jit); one-op "
                     "workloads are eager only. Modes too slow to set up on a CPU (torch.compile, mx.compile on "
                     "mlx-cpu, op-by-op JAX) are skipped in the quick suite with the reason; --suite full runs them")
    run.add_argument("--reference", action="store_true",
                     help="generate only: also run the tools users run instead on the same shapes with random weights "
                     "(transformers generate, dynamic and static cache, for torch; mlx-lm generate_step for mlx), "
                     "where installed (pip install 'metalbench[reference]'); rows with timing 'reference', never ranked")
    run.add_argument("--timing", type=_choice("timing", TIMINGS), default="both",
                     help="latency, queued or both (default both; see below)")
    run.add_argument("--threads", type=_positive_int, default=None,
                     help="intra-op threads for every framework (CPU fairness); default: each framework's own")
    run.add_argument("--python", type=_python_map, action="append", default=[], metavar="FW=PATH",
                     help="interpreter for one framework's worker (repeatable)")
    run.add_argument("-o", "--out", type=Path, default=Path("results"), help="results directory (default results/)")
    run.add_argument("--run-id", default=None, help="default: UTC timestamp")
    run.add_argument("--case-timeout", type=_positive_float, default=300.0, metavar="SECONDS",
                     help="kill a worker that has not answered a case in this long (default 300)")
    run.add_argument("--budget", type=_positive_float, default=None, metavar="SECONDS",
                     help="sampling time per case and timing kind (default 1.0 quick, 5.0 full)")
    run.add_argument("--precision", type=_positive_float, default=0.02, metavar="FRACTION",
                     help="stop sampling when the median's 95%% CI is within ±this (default 0.02)")

    show = sub.add_parser("show", help="summarise one or more results files", description="Print results as tables.")
    show.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of them")
    show.add_argument("--all", action="store_true", help="also list every non-ok row with its reason")

    gate_cli.add_parsers(sub)  # compare, baseline, export
    doctor.add_parser(sub, _python_map, _choice, _list_of(resolve_framework))  # bench.doctor

    report = sub.add_parser("report", help="render the HTML report (default results/ → reports/index.html)",
                            description="Render one self-contained HTML report of any results files; "
                            "several runs and machines merge, with the machine as a dimension.")
    report.add_argument("paths", nargs="*", type=Path, default=[Path("results")], metavar="RESULTS",
                        help="parquet files or folders of them (default results/)")
    report.add_argument("-o", "--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    report.add_argument("--baseline", type=_choice("framework", tuple(FRAMEWORKS)), default=None,
                        help="framework the speed-ups are relative to (default torch where it has rows)")
    report.add_argument("--serve", action="store_true", help="then serve the folder on localhost and print the address")
    report.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    report.add_argument("--port", type=int, default=8000, help="port to serve on; 0 picks a free one (default 8000)")
    report.add_argument("--serve-seconds", type=_positive_float, default=None, metavar="SECONDS",
                        help="stop serving after this long (default: until Ctrl-C)")
    return parser


# -- tables -----------------------------------------------------------------------------
def _text(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def summary_table(df: pd.DataFrame, title: str) -> Table:
    """One line per case and framework. Ranks (and × the best) only within comparable rows;
    reasons for unsupported/error rows are footnoted so the table stays narrow."""
    ranked = rank(df).sort_values(["workload", "params", "dtype", "mode", "framework"], kind="stable")
    table = Table(title=title, header_style="bold", caption_justify="left")
    for col, justify in (
        ("case", "left"), ("dtype", "left"), ("mode", "left"), ("framework", "left"), ("backend", "left"), ("status", "left"),
        ("latency", "right"), ("queued", "right"), ("overhead", "right"), ("TFLOP/s", "right"), ("GB/s", "right"),
        ("rel. err", "right"), ("precision", "left"), ("vs best", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True, max_width=44 if col == "case" else None)  # type: ignore[arg-type]
    notes: dict[str, int] = {}
    previous = None
    for _, r in ranked.iterrows():
        case = f"{r['workload']} {describe_params(r['params'])}"
        status = str(r["status"])
        if status == "ok" and r["not_ranked"]:
            status = "[yellow]ok*[/]"
            reason = f"not ranked: {r['not_ranked']}"
        else:
            reason = str(r.get("reason") or "")
            status = {"error": "[red]error[/]", "timeout": "[red]timeout[/]"}.get(status, status if status == "ok" else f"[dim]{status}[/]")
        if reason:
            mark = notes.setdefault(reason, len(notes) + 1)
            status += f" [{mark}]"
        rank_text = "—" if pd.isna(r["rank"]) else ("best" if r["rank"] == 1 else f"{r['vs_best']:.2f}×")
        key = (r["workload"], r["params"], r["dtype"])
        table.add_row(
            case if key != previous else "", r["dtype"] if key != previous else "", _text(r.get("mode")), r["framework"],
            _text(r.get("backend")), status,
            fmt_time(r.get("latency_median_s")), fmt_time(r.get("queued_median_s")), fmt_time(r.get("dispatch_overhead_s")),
            fmt_num(r.get("tflops")), fmt_num(r.get("gbps")), fmt_num(r.get("max_rel_error"), ".0e"),
            _text(r.get("effective_precision")).removesuffix("-class"), rank_text,
            end_section=False,
        )
        previous = key
    if notes:  # reasons are plain text: escape them, or "metalbench[mlx]" reads as rich markup
        table.caption = "\n".join(f"\\[{n}] {escape(text[:160])}" for text, n in notes.items())
    return table


def best_table(df: pd.DataFrame, title: str) -> Table:
    """Per case, each framework's fastest correct row in any mode, with the mode it took
    (summary.best_available): what a user of that framework gets, not a ranking within a mode."""
    best = best_available(df).sort_values(["workload", "params", "dtype", "timing", "median_s"], kind="stable")
    table = Table(title=title, header_style="bold")
    for col in ("case", "dtype", "timing", "framework", "mode", "of modes", "time", "vs best", "implementation"):
        table.add_column(col, justify="right" if col in ("time", "vs best") else "left", no_wrap=col != "implementation",
                         max_width=60 if col == "implementation" else None)
    for _, r in best.iterrows():
        table.add_row(f"{r['workload']} {describe_params(r['params'])}", r["dtype"], _text(r.get("timing")), r["framework"],
                      _text(r["mode"]), r["best_of_modes"], fmt_time(r["median_s"]),
                      "best" if r["vs_best"] == 1 else f"{r['vs_best']:.2f}×", escape(_text(r.get("implementation"))))
    return table


# -- commands -----------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace, console: Console) -> int:
    t = Table(title="workloads", header_style="bold")
    for col in ("name", "what", "dtypes", *[f"{s} cases" for s in SUITES]):
        t.add_column(col)
    for w in WORKLOADS.values():
        t.add_row(w.name, w.summary, ", ".join(w.dtypes), *[str(len(w.cases(s))) for s in SUITES])
    console.print(t)
    f = Table(title="frameworks", header_style="bold")
    for col in ("name", "aliases", "install"):
        f.add_column(col)
    for spec in FRAMEWORKS.values():
        f.add_row(spec.name, ", ".join(spec.aliases) or "—", spec.install_hint)
    console.print(f)
    console.print(f"devices: {', '.join(DEVICE_CHOICES)}   suites: {', '.join(SUITES)}   timings: {', '.join(TIMINGS)}")
    return 0


def cmd_env(args: argparse.Namespace, console: Console) -> int:
    from bench.machine import machine_info
    from bench.runner import WorkerLost, WorkerProcess

    for key, value in machine_info().items():
        console.print(f"[bold]{key}[/]: {value}")
    config = RunConfig(device=args.device, pythons=dict(args.python))
    t = Table(title="frameworks", header_style="bold")
    for col in ("framework", "status", "backend", "device", "versions", "threads"):
        t.add_column(col)
    log_dir = Path("results") / "env.logs"
    for spec in FRAMEWORKS.values():
        try:
            worker = WorkerProcess(spec, spec.worker_env("fp32"), config, log_dir / f"{spec.name}.log")
            hello = worker.receive(config.start_timeout_s, f"starting {spec.name}")
            worker.close()
        except WorkerLost as lost:
            hello = {"ok": False, "reason": lost.reason}
        if hello.get("ok"):
            versions = ", ".join(f"{k} {v}" for k, v in hello["versions"].items())
            t.add_row(spec.name, "ok", hello["backend"], hello["device_name"], versions, str(hello.get("threads") or "—"))
        else:
            t.add_row(spec.name, f"[dim]{hello.get('reason')}[/]", "—", "—", spec.install_hint, "—")
    console.print(t)
    return 0


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    frameworks = list(dict.fromkeys(args.framework or FRAMEWORKS))
    workloads = list(dict.fromkeys(args.workload or WORKLOADS))
    dtypes = list(dict.fromkeys(args.dtype or DTYPES))
    grid = None
    if args.params:
        if len(workloads) != 1:
            raise UsageError("--params needs exactly one --workload")
        try:
            grid = [parse_params(workloads[0], text) for text in args.params]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.model:
        if workloads != ["generate"]:
            raise UsageError("--model needs --workload generate")
        from workloads.generate import with_model

        try:
            grid = [with_model(p, str(args.model)) for p in (grid or WORKLOADS["generate"].cases(args.suite))]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"--model {args.model}: {exc}") from None
    modes = list(dict.fromkeys(args.mode or MODES))
    cases = plan(frameworks, workloads, dtypes, args.suite, grid, modes=modes)
    if not cases:
        raise UsageError(f"no cases: none of the workloads {', '.join(workloads)} defines dtype(s) {', '.join(dtypes)} "
                         f"in mode(s) {', '.join(modes)} (only train_step, lora and generate have a compiled mode)")
    budget = args.budget or (1.0 if args.suite == "quick" else 5.0)
    timings = measure.TIMING_KINDS if args.timing == "both" else (args.timing,)
    config = RunConfig(
        suite=args.suite,
        device=args.device,
        threads=args.threads,
        timings=timings,
        protocol=measure.Protocol(budget_s=budget, rel_precision=args.precision),
        case_timeout_s=args.case_timeout,
        pythons=dict(args.python),
    )
    run_id = args.run_id or new_run_id()
    writer = ResultsWriter(args.out / f"{run_id}.parquet")  # fails here, before any work, if unwritable
    console.print(f"run {run_id}: {len(cases)} cases, {', '.join(frameworks)} → {writer.path}")

    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False, refresh_per_second=2,
    )
    task = progress.add_task("starting", total=len(cases))

    def on_start(case: Case) -> None:
        progress.update(task, description=case.label[:60])

    def on_row(case: Case, row: dict[str, Any]) -> None:
        progress.advance(task)
        if row["status"] in ("error", "timeout"):
            progress.console.print(f"[red]{row['status']}[/] {escape(case.label)}: {escape(str(row.get('reason') or '')[:200])}")

    runner = Runner(config, writer, run_id, on_row=on_row, on_start=on_start)
    if args.reference and "generate" not in workloads:
        raise UsageError("--reference needs --workload generate")
    try:
        with progress:
            runner.run(cases)
            if args.reference:
                run_references(runner, cases)
    except KeyboardInterrupt:
        console.print(f"\ninterrupted: {len(writer.rows)} finished rows are saved in {writer.path}")
        return 130
    df = pd.DataFrame(writer.rows)
    console.print(summary_table(df, f"run {run_id} ({args.suite} suite)"))
    counts = df["status"].value_counts().to_dict()
    console.print(f"{len(df)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" → {writer.path}")
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    df = load_results(args.paths)
    for machine, part in df.groupby("machine", sort=False):  # rows of one machine rank together, across runs
        runs = ", ".join(part["run_id"].unique())
        console.print(summary_table(part, f"{machine} — {part['backend'].dropna().unique().tolist()} — runs {runs}"))
        if part["mode"].nunique() > 1:
            console.print(best_table(part, f"{machine} — each framework at its best (mode named)"))
    counts = df["status"].value_counts().to_dict()
    console.print(f"{len(df)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if args.all:
        for _, r in df[df["status"] != "ok"].iterrows():
            console.print(f"{r['status']:<11} {r['framework']} {r['workload']} {r['dtype']} {describe_params(r['params'])}: {r['reason']}")
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from bench.report import ReportError, build_report, serve

    try:
        index = build_report(args.paths, args.out, baseline=args.baseline,
                             warn=lambda message: sys.stderr.write(f"bench report: warning: {message}\n"))
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    console.print(f"report → {index}")
    if args.serve:
        def announce(url: str) -> None:
            print(f"serving {args.out} at {url} (Ctrl-C to stop)", flush=True)

        try:
            serve(args.out, args.host, args.port, seconds=args.serve_seconds, announce=announce)
        except OSError as exc:
            raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


COMMANDS = {"list": cmd_list, "env": cmd_env, "run": cmd_run, "show": cmd_show, "report": cmd_report}
COMMANDS.update(gate_cli.COMMANDS)
COMMANDS.update(doctor.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    try:
        return COMMANDS[args.command](args, console)
    except (UsageError, ResultsError) as exc:
        sys.stderr.write(f"bench {args.command}: error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
