"""The `bench` command line: list, env, run, show, doctor, ...

Bad input never produces a traceback: one line naming the valid choices, exit code 2.
"""

from __future__ import annotations

import signal
import sys


def _interrupted_while_loading(signum: int, frame: object) -> None:
    sys.stderr.write("bench: interrupted\n")
    raise SystemExit(130)


# Loading the modules below takes seconds on a busy CPU; Ctrl-C then was a traceback from
# inside pandas or pyarrow. Until they are loaded it is one line and exit 130 (only when
# Ctrl-C has its default meaning, and only in the main thread, where a handler can be set).
_LOADING = (signal.getsignal(signal.SIGINT) is signal.default_int_handler
            and __import__("threading").current_thread() is __import__("threading").main_thread())
if _LOADING:
    signal.signal(signal.SIGINT, _interrupted_while_loading)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import pandas as pd  # noqa: E402
from rich.console import Console
from bench.textsafe import markup as escape, visible  # file text: no markup, no terminal escapes
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import direct, doctor, fidelity, measure, noise
from bench.argtypes import UsageError, cpu_list, new_output_file, positive_float, positive_int
from bench.fmt import fmt_num, fmt_time
from bench.catalog import (
    DEVICE_CHOICES,
    DTYPES,
    FRAMEWORKS,
    SUITE_BUDGET_S,
    SUITES,
    TIMINGS,
    WORKLOADS,
    params_grid,
    resolve_choice,
    resolve_framework,
    resolve_workload,
)
from bench import ab as ab_command
from bench.gate import commands as gate_cli
from bench.plan import Case, interleave, plan
from bench.processes import headline, process_label
from bench.results import ResultsError, ResultsWriter, load_results
from bench.runner import Runner, RunConfig, new_run_id, run_references
from bench.safe_write import OutputRefused
from bench.summary import NORMAL_CONDITIONS, best_available, describe_params, rank
from workloads.base import MODES

if _LOADING:
    signal.signal(signal.SIGINT, signal.default_int_handler)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

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


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and exit with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {visible(message)}\n")
        sys.exit(EXIT_USAGE)


def _list_of(resolver: Any, kind: str, choices: Sequence[str]) -> Any:
    """A comma-separated list; an empty one (`-f ,`, `-d ""`) is an error, not "all":
    leaving the option out is how to ask for every choice. `choices` is required, so the
    message always names them (`--mode ''` once said "choose from: ;")."""

    def parse(text: str) -> list[str]:
        try:
            items = [resolver(item) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not items:
            raise argparse.ArgumentTypeError(
                f"empty {kind} {text!r} (choose from: {', '.join(choices)}; leave the option out for all)")
        return items

    return parse


def _mode_item(text: str) -> str | tuple[str, str]:
    """One --mode entry: a mode for every framework, or FW=MODE for one framework."""
    framework, sep, mode = text.strip().partition("=")
    if not sep:
        return resolve_choice("mode", framework, MODES)
    return resolve_framework(framework.strip()), resolve_choice("mode", mode.strip(), MODES)


def _choice(kind: str, choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> str:
        try:
            return resolve_choice(kind, text, choices)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


# More intra-op threads than this only oversubscribes the cores (and 100000 crashed a worker).
MAX_THREADS = max(64, 4 * (os.cpu_count() or 1))
# The runner waits with select(); epoll takes milliseconds as a C int, so ~2.1e6 s overflows.
MAX_TIMEOUT_S = 1_000_000.0


def _threads(text: str) -> int:
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_THREADS} threads (4× this machine's cores), got {text!r}")
    return value


def _timeout_s(text: str) -> float:
    value = positive_float(text)
    if value > MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds up to {MAX_TIMEOUT_S:.0f}, got {text!r}")
    return value


# Processes per framework by suite: the quick suite stands on 3 and finishes in minutes on a
# 2-core CPU, the full suite on 5 (docs/processes.md has the measurements behind both).
SUITE_PROCESSES = {"quick": 3, "full": 5}
# pyperf's default is 20 worker processes; beyond 100 a run of even the quick suite takes hours.
MAX_PROCESSES = 100


def _processes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes from 1 to {MAX_PROCESSES}, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free port), got {text!r}")
    return value


def _run_id(text: str) -> str:
    """A file name under -o (sub-folders allowed), never a path that leaves it."""
    path = Path(text)
    leaves = not text.strip() or path.is_absolute() or ".." in path.parts or visible(text) != text  # NUL, ESC, bidi
    hidden = not path.name or path.name.startswith(".") or text.endswith(("/", "\\"))  # "..parquet": `show` skips it
    if leaves or hidden:
        raise argparse.ArgumentTypeError("expected a name inside the results folder (no '..', not absolute, not hidden, "
                                         f"no control characters), got {text!r}")
    return text


def _python_map(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected FRAMEWORK=/path/to/python, got {text!r}")
    try:
        framework = resolve_framework(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return framework, _interpreter(path)


def _interpreter(path: str) -> str:
    """An executable file (a bare name is looked up on PATH): checked here, so a typo is one
    line before the plan is printed, not a traceback when the first worker starts."""
    found = str(Path(path).expanduser()) if os.sep in path or "/" in path else shutil.which(path)
    if found is None and Path(path).exists():  # a bare name: PATH first, then this folder
        found = path
    if found is None or not Path(found).is_file():
        raise argparse.ArgumentTypeError(f"no interpreter at {path!r} (expected the path of a python executable)")
    if not os.access(found, os.X_OK):
        raise argparse.ArgumentTypeError(f"{path!r} is not executable (expected the path of a python executable)")
    return found


def add_list_parser(sub: Any) -> None:
    """`bench list`: one function per command, so build_parser reads as the list of commands."""
    sub.add_parser("list", help="workloads, dtypes, suites, frameworks and devices", description="Show what can be run.")


def add_env_parser(sub: Any) -> None:
    """`bench env`: its options, kept apart so build_parser stays the list of commands."""
    env = sub.add_parser("env", help="this machine and what each framework finds on it",
                         description="Start each framework in a worker and report its backend, device and versions.")
    env.add_argument("--device", type=_choice("device", DEVICE_CHOICES), default="auto")
    env.add_argument("--python", type=_python_map, action="append", default=[], metavar="FW=PATH")


def add_run_parser(sub: Any) -> None:
    """`bench run`: the longest set of options, kept apart so build_parser stays the list of commands."""
    run = sub.add_parser("run", help="run benchmarks and write results/<run-id>.parquet",
                         description="Run workloads through framework adapters, one worker process per framework.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-f", "--framework", type=_list_of(resolve_framework, "framework list", tuple(FRAMEWORKS)), action="extend", metavar="NAMES",
                     help=f"comma-separated; default all: {', '.join(FRAMEWORKS)}")
    run.add_argument("-w", "--workload", type=_list_of(resolve_workload, "workload list", tuple(WORKLOADS)), action="extend", metavar="NAMES",
                     help=f"comma-separated; default all: {', '.join(WORKLOADS)}")
    run.add_argument("-d", "--dtype", type=_list_of(lambda t: resolve_choice("dtype", t, DTYPES), "dtype list", DTYPES), action="extend",
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
    run.add_argument("--mode", type=_list_of(_mode_item, "mode list", MODES), action="extend", metavar="MODES",
                     help="eager, compiled or both, comma-separated (default both); FW=MODE sets one framework's, e.g. "
                     "torch=eager,jax=compiled,mlx=eager (each at its best). train_step, lora and generate run "
                     "in each (compiled: torch.compile, mx.compile, tf.function(jit_compile=True), jax.jit); one-op "
                     "workloads are eager only. Modes too slow to set up on a CPU (torch.compile, mx.compile on "
                     "mlx-cpu, op-by-op JAX) are skipped in the quick suite with the reason; --suite full runs them")
    run.add_argument("--reference", action="store_true",
                     help="generate only: also run the tools users run instead on the same shapes with random weights "
                     "(transformers generate, dynamic and static cache, for torch; mlx-lm generate_step for mlx), "
                     "where installed (pip install 'metalbench[reference]'); rows with timing 'reference', never ranked")
    run.add_argument("--reference-only", action="store_true",
                     help="generate only: run just the reference rows of --reference for the planned cases (their "
                     "frameworks and modes: torch eager -> transformers dynamic cache, torch compiled -> static cache, "
                     "mlx eager -> mlx-lm), no framework case")
    run.add_argument("--timing", type=_choice("timing", TIMINGS), default="both",
                     help="latency, queued or both (default both; see below)")
    run.add_argument("--threads", type=_threads, default=None,
                     help="intra-op threads for every framework (CPU fairness); default: each framework's own")
    run.add_argument("--cpus", type=cpu_list, default=(), metavar="LIST",
                     help="bind every worker to these CPUs, e.g. 2,3 (Linux): on a GPU host, small ops are "
                     "host-bound and a fresh process's speed depends on where it lands (H200: fresh processes 30-250%% "
                     "apart unbound, 12-69%% bound to two cores); the row's cpus column says what the worker really had")
    run.add_argument("--python", type=_python_map, action="append", default=[], metavar="FW=PATH",
                     help="interpreter for one framework's worker (repeatable)")
    run.add_argument("--compile-cache", type=_choice("compile cache", ("run", "off")), default="run",
                     help="run: the run's processes share a persistent JAX compilation cache in <out>/<run-id>.logs/ "
                     "(the first process compiles, later ones may load: the compile_cache column says so; a "
                     "JAX_COMPILATION_CACHE_DIR you set is used instead); off: every process compiles cold (default run)")
    run.add_argument("--processes", type=_processes, default=None, metavar="N",
                     help="fresh worker processes per framework, interleaved across frameworks (A1 B1 A2 B2 …); each "
                     "case's figure is the median of its processes' figures with a between-process 95%% interval "
                     "(default " + ", ".join(f"{n} {suite}" for suite, n in SUITE_PROCESSES.items())
                     + f"; at most {MAX_PROCESSES}; docs/processes.md)")
    run.add_argument("-o", "--out", type=Path, default=Path("results"), help="results directory (default results/)")
    run.add_argument("--run-id", type=_run_id, default=None,
                     help="default: UTC timestamp and a random suffix; an id already used in -o is refused")
    run.add_argument("--case-timeout", type=_timeout_s, default=300.0, metavar="SECONDS",
                     help="kill a worker that has not answered a case in this long (default 300)")
    run.add_argument("--budget", type=positive_float, default=None, metavar="SECONDS",
                     help="sampling time per case and timing kind (default "
                     + ", ".join(f"{s:g} {suite}" for suite, s in SUITE_BUDGET_S.items()) + ")")
    run.add_argument("--precision", type=positive_float, default=0.02, metavar="FRACTION",
                     help="stop sampling when the median's 95%% CI is within ±this (default 0.02)")
    run.add_argument("--energy", type=_choice("energy", ("on", "off")), default="on",
                     help="measure joules per call where a counter exists (NVML, RAPL, Apple IOReport); "
                          "off opens no counter and runs no energy window (default on; docs/energy.md)")
    run.add_argument("--force-memory", action="store_true",
                     help="run cases even when their estimated memory exceeds what this machine has free")


def add_show_parser(sub: Any) -> None:
    """`bench show`: its options, kept apart so build_parser stays the list of commands."""
    show = sub.add_parser("show", help="summarise one or more results files", description="Print results as tables.")
    show.add_argument("paths", nargs="+", type=Path, metavar="RESULTS", help="parquet files or folders of them")
    show.add_argument("--all", action="store_true", help="also list every non-ok row with its reason")
    show.add_argument("--efficiency", action="store_true",
                      help="joules per call, power and per-watt figures, ranked by energy (docs/energy.md)")


def add_report_parser(sub: Any) -> None:
    """`bench report`: its options, kept apart so build_parser stays the list of commands."""
    report = sub.add_parser("report", help="render the HTML report (default results/ → reports/index.html)",
                            description="Render one self-contained HTML report of any results files; "
                            "several runs and machines merge, with the machine as a dimension.")
    report.add_argument("paths", nargs="*", type=Path, default=[Path("results")], metavar="RESULTS",
                        help="parquet files or folders of them (default results/)")
    report.add_argument("-o", "--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    report.add_argument("--serve", action="store_true", help="then serve the folder on localhost and print the address")
    report.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    report.add_argument("--port", type=_port, default=8000, help="port to serve on; 0 picks a free one (default 8000)")
    report.add_argument("--serve-seconds", type=positive_float, default=None, metavar="SECONDS",
                        help="stop serving after this long (default: until Ctrl-C)")


def _at_least(minimum: int, what: str) -> Any:
    """A whole number of processes from `minimum` to MAX_PROCESSES, the reason for the minimum named."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not minimum <= value <= MAX_PROCESSES:
            raise argparse.ArgumentTypeError(f"expected a whole number from {minimum} to {MAX_PROCESSES} ({what}), got {text!r}")
        return value

    return parse


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_TIMEOUT_S:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to {MAX_TIMEOUT_S:.0f}, got {text!r}")
    return value


def add_fidelity_parser(sub: Any) -> None:
    """`bench fidelity` (bench.fidelity): the suite against a direct call of the same op."""
    fid = sub.add_parser("fidelity", help="does the suite measure what a direct call measures on this machine?",
                         description=fidelity.DESCRIPTION, epilog=fidelity.EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    frameworks = tuple(direct.BUILDERS)
    fid.add_argument("-f", "--framework", action="extend", metavar="NAMES",
                     type=_list_of(lambda t: resolve_choice("framework", resolve_framework(t), frameworks), "framework list", frameworks),
                     help=f"comma-separated; default all: {', '.join(frameworks)}")
    fid.add_argument("-w", "--workload", action="extend", metavar="NAMES",
                     type=_list_of(lambda t: resolve_choice("workload", t.strip(), direct.WORKLOADS), "workload list", direct.WORKLOADS),
                     help=f"comma-separated, of the ops the direct side writes: {', '.join(direct.WORKLOADS)} (default: every one the --suite's cases hold)")
    fid.add_argument("-d", "--dtype", action="extend", metavar="NAMES",
                     type=_list_of(lambda t: resolve_choice("dtype", t.strip(), direct.DTYPES), "dtype list", direct.DTYPES),
                     help=f"comma-separated: {', '.join(direct.DTYPES)} (default: the suite's cases'; with -p, fp32)")
    fid.add_argument("-p", "--params", action="append", default=[], metavar="K=V,...",
                     help="these parameters instead of the suite's cases, e.g. m=64,n=64,k=64 (repeatable; needs exactly one -w)")
    fid.add_argument("--suite", type=_choice("suite", tuple(fidelity.CASES)), default="quick",
                     help="quick: three sub-millisecond CPU calls; full: five GPU cases, small and large (default quick)")
    fid.add_argument("--device", type=_choice("device", DEVICE_CHOICES), default="auto",
                     help="auto: the backend the suite's worker picks (metal, else cuda, else cpu); the direct side "
                     "uses the one the suite ran on (default auto)")
    fid.add_argument("--processes", type=_at_least(2, "an interval needs two processes"), default=fidelity.DEFAULT_PROCESSES,
                     metavar="N", help=f"fresh processes per side and framework (default {fidelity.DEFAULT_PROCESSES})")
    fid.add_argument("--budget", type=positive_float, default=fidelity.DEFAULT_BUDGET_S, metavar="SECONDS",
                     help=f"the suite's sampling time per case in each process (default {fidelity.DEFAULT_BUDGET_S:g})")
    fid.add_argument("--repeat", type=positive_int, default=fidelity.DEFAULT_REPEAT, metavar="N",
                     help=f"deep-queue batches per case in each direct process (default {fidelity.DEFAULT_REPEAT})")
    fid.add_argument("--direct-warmup", type=_non_negative_seconds, default=0.0, metavar="SECONDS",
                     help="untimed deep batches per direct case before its timed ones: a GPU kernel at its power cap "
                     "reads its burst clock in the first ~0.1 s, the suite reads it sustained (default 0)")
    fid.add_argument("--deadline", type=positive_float, default=None, metavar="SECONDS",
                     help="start no round that would end after this many seconds (by the last round's length) and "
                     "report what was measured (default: no limit)")
    fid.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                     help="keep the suite's rows as DIR/<run-id>.parquet (default: not kept)")
    fid.add_argument("--run-id", type=_run_id, default=None, help="default: fidelity-<UTC timestamp>-<random suffix>")
    fid.add_argument("--json", type=new_output_file, default=None, metavar="FILE",
                     help="also write the pairs and every direct process's figures as JSON")


def add_noise_parser(sub: Any) -> None:
    """`bench noise` (bench.noise): between-process spread, and what the gate could detect with it."""
    from bench.gate.compare import FIGURES, MIN_BASELINE_PROCESSES, MIN_CANDIDATE_PROCESSES, GateConfig

    nz = sub.add_parser("noise", help="how noisy is this machine, and how many processes does the gate need?",
                        description=noise.DESCRIPTION, epilog=noise.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    nz.add_argument("paths", nargs="*", type=Path, metavar="RESULTS",
                    help="read these results files or folders instead of running cases (the run options then do not apply)")
    nz.add_argument("-f", "--framework", type=_list_of(resolve_framework, "framework list", tuple(FRAMEWORKS)), action="extend",
                    metavar="NAMES", help=f"comma-separated; default all: {', '.join(FRAMEWORKS)}")
    nz.add_argument("-w", "--workload", type=_list_of(resolve_workload, "workload list", tuple(WORKLOADS)), action="extend",
                    metavar="NAMES", help=f"comma-separated (default {','.join(noise.DEFAULT_WORKLOADS)})")
    nz.add_argument("-d", "--dtype", type=_list_of(lambda t: resolve_choice("dtype", t, DTYPES), "dtype list", DTYPES),
                    action="extend", metavar="NAMES", help="comma-separated (default every dtype the workload defines)")
    nz.add_argument("-p", "--params", action="append", default=[], metavar="K=V,...",
                    help="these parameters instead of the suite's grid (repeatable; needs exactly one -w)")
    nz.add_argument("--suite", type=_choice("suite", SUITES), default="quick", help="the cases' sizes (default quick)")
    nz.add_argument("--device", type=_choice("device", DEVICE_CHOICES), default="auto", help="default auto")
    nz.add_argument("--processes", type=_at_least(2, "a spread needs two processes"), default=noise.DEFAULT_PROCESSES,
                    metavar="K", help=f"fresh processes per framework (default {noise.DEFAULT_PROCESSES}; more give a "
                    "steadier estimate of the spread)")
    nz.add_argument("--threads", type=_threads, default=noise.DEFAULT_THREADS,
                    help=f"intra-op threads, as make gate runs (default {noise.DEFAULT_THREADS})")
    nz.add_argument("--budget", type=positive_float, default=noise.DEFAULT_BUDGET_S, metavar="SECONDS",
                    help=f"sampling time per case in each process, as make gate (default {noise.DEFAULT_BUDGET_S:g})")
    nz.add_argument("--cpus", type=cpu_list, default=(), metavar="LIST",
                    help="bind every worker to these CPUs, e.g. 2,3 (Linux), to see what binding does to the spread")
    nz.add_argument("--baseline", type=_at_least(MIN_BASELINE_PROCESSES, "the gate's minimum"), default=noise.DEFAULT_BASELINE,
                    metavar="N", help=f"baseline processes of the gate to project (default {noise.DEFAULT_BASELINE}, "
                    "as make baseline)")
    nz.add_argument("--gate", type=_at_least(MIN_CANDIDATE_PROCESSES, "the gate's minimum"), default=noise.DEFAULT_GATE,
                    metavar="M", help=f"gate processes of the gate to project (default {noise.DEFAULT_GATE}, as make gate)")
    nz.add_argument("--gate-cases", type=positive_int, default=None, metavar="C",
                    help="cases the gate compares, for its Bonferroni correction (default: the quick suite's cases "
                    "of the frameworks measured, what make gate compares)")
    nz.add_argument("--figure", type=_choice("figure", tuple(FIGURES)), default=GateConfig.figure,
                    help=f"each process's figure, as bench compare --figure (default {GateConfig.figure})")
    nz.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                    help="keep the run's rows as DIR/<run-id>.parquet (default: not kept)")
    nz.add_argument("--run-id", type=_run_id, default=None, help="default: noise-<UTC timestamp>-<random suffix>")
    nz.add_argument("--json", type=new_output_file, default=None, metavar="FILE",
                    help="also write each case's figures as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench",
        description="metalbench: like-for-like benchmarks of PyTorch, TensorFlow, JAX and MLX "
        "on Apple Silicon (Metal), CUDA and CPU.",
        epilog="Start with 'bench list', then 'bench run'. Each command has --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    add_list_parser(sub)
    add_env_parser(sub)
    add_run_parser(sub)
    add_show_parser(sub)
    gate_cli.add_parsers(sub)  # compare, baseline, export
    ab_command.add_parser(sub)  # ab: runs both sides, then judges them as compare does
    doctor.add_parser(sub, _python_map, _choice, _list_of(resolve_framework, "framework list", tuple(FRAMEWORKS)))  # bench.doctor
    add_report_parser(sub)
    add_fidelity_parser(sub)  # bench.fidelity
    add_noise_parser(sub)  # bench.noise
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
        ("rel. err", "right"), ("precision", "left"), ("procs", "right"), ("vs best", "right"),
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
            status = {"error": "[red]error[/]", "timeout": "[red]timeout[/]"}.get(status, status if status == "ok" else f"[dim]{escape(status)}[/]")
        if r["conditions"] != NORMAL_CONDITIONS:  # bench.conditions: never ranked silently against normal rows
            status += " [yellow]![/]"
            reason = "; ".join(filter(None, [reason, f"measured under: {r['conditions']} (ranked only with rows measured so)"]))
        if reason:
            mark = notes.setdefault(reason, len(notes) + 1)
            status += f" [{mark}]"
        rank_text = "—" if pd.isna(r["rank"]) else ("best" if r["rank"] == 1 else f"{r['vs_best']:.2f}×")
        if r.get("tie") and not pd.isna(r["rank"]):  # intervals overlap the best's: neither wins
            rank_text = "≈ best" if r["rank"] == 1 else f"≈ ({r['vs_best']:.2f}×)"
        key = (r["workload"], r["params"], r["dtype"])
        table.add_row(  # every file-supplied cell escaped: a "[/]" in a name is text, not rich markup
            escape(case) if key != previous else "", escape(_text(r["dtype"])) if key != previous else "",
            escape(_text(r.get("mode"))), escape(_text(r["framework"])), escape(_text(r.get("backend"))), status,
            fmt_time(r.get("latency_median_s")), fmt_time(r.get("queued_median_s")), fmt_time(r.get("dispatch_overhead_s")),
            fmt_num(r.get("tflops")), fmt_num(r.get("gbps")), fmt_num(r.get("max_rel_error"), ".0e"),
            escape(_text(r.get("effective_precision")).removesuffix("-class")), process_label(r), rank_text,
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
        table.add_row(escape(f"{r['workload']} {describe_params(r['params'])}"), escape(_text(r["dtype"])),
                      escape(_text(r.get("timing"))), escape(_text(r["framework"])),
                      escape(_text(r["mode"])), escape(_text(r["best_of_modes"])), fmt_time(r["median_s"]),
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
        f.add_row(spec.name, ", ".join(spec.aliases) or "—", escape(spec.install_hint))  # "[mlx]" is text
    console.print(f)
    console.print(f"devices: {', '.join(DEVICE_CHOICES)}   suites: {', '.join(SUITES)}   timings: {', '.join(TIMINGS)}")
    return 0


def cmd_env(args: argparse.Namespace, console: Console) -> int:
    from bench.machine import machine_info
    from bench.runner import WorkerLost, WorkerProcess

    for key, value in machine_info().items():
        console.print(f"[bold]{key}[/]: {escape(str(value))}")
    config = RunConfig(device=args.device, pythons=dict(args.python))
    t = Table(title="frameworks", header_style="bold")
    for col in ("framework", "status", "backend", "device", "versions", "threads"):
        t.add_column(col)
    log_dir = Path("results") / "env.logs"
    for spec in FRAMEWORKS.values():
        try:
            worker = WorkerProcess(spec, spec.worker_env("fp32", args.device), config, log_dir / f"{spec.name}.log")
            hello = worker.await_hello(config)
            worker.close()
        except WorkerLost as lost:
            hello = {"ok": False, "status": lost.status, "reason": lost.reason}
        if hello.get("ok"):
            versions = ", ".join(f"{k} {v}" for k, v in hello["versions"].items())
            t.add_row(spec.name, "ok", escape(str(hello["backend"])), escape(str(hello["device_name"])), escape(versions),
                      str(hello.get("threads") or "—"))
        else:
            # installed, but without the asked-for backend: an install hint would mislead (`bench doctor` says why)
            hint = spec.install_hint if hello.get("status") == "skipped" else "—"
            t.add_row(spec.name, f"[dim]{escape(str(hello.get('reason')))}[/]", "—", "—", escape(hint), "—")
    console.print(t)
    return 0


MODEL_SIZES = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size")
MODEL_FLOATS = ("rope_theta", "rms_norm_eps")


def check_model_config(folder: Path) -> None:
    """config.json of a --model folder holds what `generate` needs, as positive integers:
    ValueError naming the key otherwise (a list, a "64" or a 0 once crashed the run)."""
    from bench.inputs import read_regular_text

    cfg = json.loads(read_regular_text(folder / "config.json"))
    if not isinstance(cfg, dict):
        raise ValueError(f"config.json is a JSON {type(cfg).__name__}, expected an object with {', '.join(MODEL_SIZES)}")
    for key in (*MODEL_SIZES, "num_key_value_heads", "head_dim"):
        if key in MODEL_SIZES and key not in cfg:
            raise ValueError(f"config.json has no {key} (needs: {', '.join(MODEL_SIZES)})")
        value = cfg.get(key)
        if key in cfg and value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"config.json {key} is {value!r}, expected a positive integer")
    for key in MODEL_FLOATS:  # optional, but `float(None)` in the worker was a traceback
        value = cfg.get(key)
        if key in cfg and (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
                           or not math.isfinite(value)):
            raise ValueError(f"config.json {key} is {value!r}, expected a positive number (or leave it out)")


def _resolve_grid(args: argparse.Namespace, workloads: list[str]) -> list[Any] | None:
    """The cases' parameters from --params and --model, or None for the suite's grid: apart
    from cmd_run because each of the two options has its own usage errors."""
    grid = params_grid(workloads, args.params)
    if args.model:
        if workloads != ["generate"]:
            raise UsageError("--model needs --workload generate")
        from workloads.generate import with_model

        try:
            check_model_config(args.model)
            grid = [with_model(p, str(args.model)) for p in (grid or WORKLOADS["generate"].cases(args.suite))]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"--model {args.model}: {exc}") from None
    return grid


def _plan_cases(args: argparse.Namespace, frameworks: list[str], workloads: list[str], dtypes: list[str],
                grid: list[Any] | None) -> list[Case]:
    """The cases to run, refused as a usage error when there are none or they will not fit in
    memory: apart from cmd_run so it reads as plan, configure, run."""
    entries = args.mode or []
    per_framework: dict[str, list[str]] = {}
    for entry in entries:
        if isinstance(entry, tuple):
            per_framework.setdefault(entry[0], []).append(entry[1])
    general = [m for m in entries if isinstance(m, str)] or list(MODES)
    modes = list(dict.fromkeys(general + [m for ms in per_framework.values() for m in ms]))
    cases = [c for c in plan(frameworks, workloads, dtypes, args.suite, grid, modes=modes)
             if c.mode in per_framework.get(c.framework, general)]
    if not cases:
        raise UsageError(f"no cases: none of the workloads {', '.join(workloads)} defines dtype(s) {', '.join(dtypes)} "
                         f"in mode(s) {', '.join(modes)} (only train_step, lora and generate have a compiled mode)")
    if not args.force_memory:
        from bench.preflight import check_memory

        try:
            check_memory(cases, args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return cases


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The runner's settings from the options, with the suite's default budget: apart from
    cmd_run so it reads as plan, configure, run."""
    budget = args.budget or SUITE_BUDGET_S[args.suite]
    timings = measure.TIMING_KINDS if args.timing == "both" else (args.timing,)
    return RunConfig(
        suite=args.suite,
        device=args.device,
        threads=args.threads,
        timings=timings,
        protocol=measure.Protocol(budget_s=budget, rel_precision=args.precision, energy=getattr(args, "energy", "on") == "on"),
        case_timeout_s=args.case_timeout,
        pythons=dict(args.python),
        cpus=args.cpus,
    )


def _with_compile_cache(config: RunConfig, args: argparse.Namespace, results: Path) -> RunConfig:
    """The run's shared compile cache beside its logs (`--compile-cache run`), or none."""
    if getattr(args, "compile_cache", "off") != "run":
        return config
    return dataclasses.replace(config, compile_cache_dir=results.with_suffix(".logs") / "compile-cache")


def _progress(console: Console, total: int) -> tuple[Progress, Any, Any]:
    """The progress bar and the runner's callbacks that drive it (errors printed as they
    happen): apart from cmd_run so it reads as plan, configure, run."""
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False, refresh_per_second=2,
    )
    task = progress.add_task("starting", total=total)

    def on_start(case: Case) -> None:
        progress.update(task, description=case.label[:60])

    def on_row(case: Case, row: dict[str, Any]) -> None:
        progress.advance(task)
        if row["status"] in ("error", "timeout"):
            progress.console.print(f"[red]{row['status']}[/] {escape(case.label)}: {escape(str(row.get('reason') or '')[:200])}")

    return progress, on_start, on_row


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    frameworks = list(dict.fromkeys(args.framework or FRAMEWORKS))
    workloads = list(dict.fromkeys(args.workload or WORKLOADS))
    dtypes = list(dict.fromkeys(args.dtype or DTYPES))
    grid = _resolve_grid(args, workloads)
    cases = _plan_cases(args, frameworks, workloads, dtypes, grid)
    processes = args.processes or SUITE_PROCESSES[args.suite]
    config = _run_config(args)
    run_id = args.run_id or new_run_id()
    # fails here, before any work, if unwritable or if the id names a file this run did not create
    writer = ResultsWriter(args.out / f"{run_id}.parquet")
    config = _with_compile_cache(config, args, writer.path)
    console.print(escape(f"run {run_id}: {len(cases)} cases × {processes} processes per framework, interleaved, "
                         f"{', '.join(frameworks)} → {writer.path}"))
    cases = interleave(cases, processes, environment=lambda c: tuple(sorted(FRAMEWORKS[c.framework].worker_env(c.dtype, args.device).items())))

    progress, on_start, on_row = _progress(console, len(cases))
    runner = Runner(config, writer, run_id, on_row=on_row, on_start=on_start)
    if (args.reference or args.reference_only) and "generate" not in workloads:
        raise UsageError(f"--{'reference-only' if args.reference_only else 'reference'} needs --workload generate")
    if args.reference_only:
        from bench.reference import REFERENCES

        if not any((c.framework, c.mode) in REFERENCES for c in cases):
            have = ", ".join(f"{fw} {mode}" for fw, mode in REFERENCES)
            raise UsageError(f"--reference-only: no reference beside the planned frameworks and modes (references exist beside: {have})")
    try:
        with progress, writer:  # the writer's file whole and its journal gone, however the run ends
            if not args.reference_only:
                runner.run(cases)
            if args.reference or args.reference_only:
                run_references(runner, cases)
    except KeyboardInterrupt:
        if writer.rows:
            console.print(escape(f"\ninterrupted: {len(writer.rows)} finished rows are saved in {writer.path}"))
        else:
            console.print("\ninterrupted before the first case finished: nothing was written")
        return 130
    except OSError as exc:  # disk full, folder removed mid-run: the rows written so far stay
        saved = f"{writer.saved_rows} finished rows are saved in {writer.path}" if writer.saved_rows else "nothing was saved"
        raise UsageError(f"cannot write results to {writer.path}: {exc.strerror or exc}; {saved}") from None
    df = pd.DataFrame(writer.rows)
    console.print(summary_table(headline(df), escape(f"run {run_id} ({args.suite} suite, {processes} processes per framework)")))
    counts = df["status"].value_counts().to_dict()
    console.print(escape(f"{len(df)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" → {writer.path}"))
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    df = load_results(args.paths, warn=lambda message: sys.stderr.write(f"bench show: warning: {one_line(message)}\n"))
    for machine, part in df.groupby("machine", sort=False):  # rows of one machine rank together, across runs
        runs = ", ".join(map(str, part["run_id"].unique()))
        part = headline(part)  # one row per case and run: the median over its processes
        console.print(summary_table(part, escape(f"{machine} — {part['backend'].dropna().unique().tolist()} — runs {runs}")))
        if args.efficiency:
            from bench.efficiency import efficiency_table

            console.print(efficiency_table(part, escape(f"{machine} — energy per call (least joules ranks first)")))
        if part["mode"].nunique() > 1:
            console.print(best_table(part, escape(f"{machine} — each framework at its best (mode named)")))
    counts = df["status"].value_counts().to_dict()
    console.print(escape(f"{len(df)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items())))
    if args.all:
        for _, r in df[df["status"] != "ok"].iterrows():
            line = f"{r['status']!s:<11} {r['framework']} {r['workload']} {r['dtype']} {describe_params(r['params'])}: {r['reason']}"
            console.print(escape(line))
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from bench.report import ReportError, build_report, serve

    warnings: list[str] = []  # held back: a failing command says one line, its error
    try:
        index = build_report(args.paths, args.out, warn=warnings.append)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    for message in warnings:
        sys.stderr.write(f"bench report: warning: {one_line(message)}\n")
    console.print(escape(f"report → {index}"))
    if args.serve:
        def announce(url: str) -> None:
            print(visible(f"serving {args.out} at {url} (Ctrl-C to stop)"), flush=True)

        try:
            serve(args.out, args.host, args.port, seconds=args.serve_seconds, announce=announce)
        except OSError as exc:
            raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


COMMANDS = {"list": cmd_list, "env": cmd_env, "run": cmd_run, "show": cmd_show, "report": cmd_report}
COMMANDS.update(gate_cli.COMMANDS)
COMMANDS["ab"] = ab_command.cmd_ab
COMMANDS.update(doctor.COMMANDS)
COMMANDS["fidelity"] = fidelity.cmd_fidelity
COMMANDS["noise"] = noise.cmd_noise


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return EXIT_INTERRUPTED
    if args.command is None:
        parser.print_help()
        sys.stderr.write(f"bench: error: a command is required (choose from: {', '.join(COMMANDS)})\n")
        return EXIT_USAGE
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    try:
        return COMMANDS[args.command](args, console)
    except (UsageError, ResultsError, OutputRefused) as exc:
        sys.stderr.write(f"bench {args.command}: error: {one_line(str(exc))}\n")
        return EXIT_USAGE
    except OSError as exc:  # an output that cannot be written (read-only, full, a file in the way)
        where = f"{one_line(str(exc.filename))}: " if exc.filename else ""
        sys.stderr.write(f"bench {args.command}: error: {where}{one_line(exc.strerror or str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C in report, ab, compare…: one line, the shell's 130 (run says what it saved)
        sys.stderr.write(f"bench {args.command}: interrupted\n")
        return EXIT_INTERRUPTED


def one_line(text: str) -> str:
    """Error text from files or the OS, on the single line the contract promises, with every
    control character shown, not obeyed (bench.textsafe)."""
    return " ".join(visible(text).split())


if __name__ == "__main__":
    sys.exit(main())
