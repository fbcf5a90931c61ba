"""`bench fidelity`: does this suite measure what a direct call measures, on this machine?

The suite's figure for a case passes through an adapter, a worker, a queue-depth sweep and
adaptive sampling. A user who writes the same op against the framework's own API and times a
deep queue of calls (`bench.direct`) should get the same number; if not, the suite adds or
hides something. One fresh process of either side is no reference: fresh processes land in
speed states (30-250% apart for small ops on a GPU's host, ±5-25% for JAX/TensorFlow CPU calls
on a 2-core VM; docs/processes.md), so each side runs in N fresh processes, interleaved in
rounds (round r: the suite's process r of every framework and a direct process of every
framework, the order of the two sides alternating) so drift lands on both alike.

Per case it reports the suite's median of process medians with its between-process 95%
interval (`bench.stats.summarize_processes`, as `bench run`'s headline), the direct side's
median of process medians with its interval, and whether each interval contains the other
side's median. Both sides time `queued` (k calls, one barrier); the suite runs with energy
off and each framework's default threads, as the direct side does.

It sits beside the runner, as `bench ab` does: it runs cases and then summarises them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from bench import child, direct, measure, stats
from bench.fmt import fmt_time
from bench.plan import Case
from bench.argtypes import UsageError
from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig, new_run_id
from bench.textsafe import markup as escape
from workloads import params_key

CaseSpec = tuple[str, Mapping[str, Any], str]  # workload, params, dtype

# Case sets by suite. quick: sub-millisecond CPU calls, where a wrapper's overhead would show.
# full: small dispatch-bound ops and large ops that fill a GPU.
CASES: dict[str, list[CaseSpec]] = {
    "quick": [("matmul", {"m": 16, "n": 1024, "k": 1024}, "fp32"), ("matmul", {"m": 256, "n": 256, "k": 256}, "fp32"),
              ("sdpa", {"batch": 1, "heads": 4, "seq": 128, "head_dim": 64, "causal": False}, "fp32")],
    "full": [("matmul", {"m": 16, "n": 4096, "k": 4096}, "bf16"),
             ("sdpa", {"batch": 64, "heads": 8, "seq": 64, "head_dim": 128, "causal": False}, "bf16"),
             ("stream", {"n": 2**23}, "fp32"),
             ("matmul", {"m": 8192, "n": 8192, "k": 8192}, "bf16"),
             ("sdpa", {"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": False}, "bf16")],
}
FRAMEWORKS = tuple(direct.BUILDERS)
DEFAULT_PROCESSES = 5
DEFAULT_BUDGET_S = 0.3  # suite sampling per case: one process's figure needs few samples; the process count matters
DEFAULT_REPEAT = 7  # deep-queue batches per direct process and case
DIRECT_TIMEOUT_S = 900.0

DESCRIPTION = """\
Does this suite measure what a direct call measures on this machine? Each case runs in N
fresh processes of the suite (bench's own worker: check, warm-up, queue-depth sweep,
sampling) and N fresh processes of a direct script (the op written against the framework's
own API, its own RNG and threads, a deep queue of calls closed by one barrier, timed with
timeit). The two sides alternate in rounds, so drift lands on both. Per case: the suite's
median of process medians and its between-process 95% interval, the direct side's, and
whether each interval contains the other side's median (both 'yes': the suite measures what
a direct call measures here)."""

EPILOG = """\
examples:
  bench fidelity                              torch, tensorflow, jax, mlx on this machine's default device
  bench fidelity -f torch --processes 3       one framework, three processes a side
  bench fidelity --device cuda --suite full   small dispatch-bound ops and large ones on a GPU
  bench fidelity -f torch -w matmul -p m=64,n=64,k=64 -d fp32

cases: --suite quick times three sub-millisecond CPU calls (matmul 16x1024x1024 and 256^3,
sdpa 1x4x128x64, fp32); --suite full five GPU cases (matmul 16x4096x4096 and 8192^3 bf16, sdpa
64x8x64x128 and 4x32x4096x128 bf16, stream 2^23 fp32). -w, -d and -p narrow or replace them.
A framework that is not installed is reported as such; the others still run.
"""


@dataclass(frozen=True)
class Study:
    """What one `bench fidelity` measures."""

    frameworks: tuple[str, ...]
    cases: tuple[CaseSpec, ...]
    device: str = "auto"
    processes: int = DEFAULT_PROCESSES
    budget_s: float = DEFAULT_BUDGET_S
    repeat: int = DEFAULT_REPEAT
    direct_warmup_s: float = 0.0  # untimed deep batches per direct case before its repeats
    deadline_s: float | None = None  # start no round that would end after this, by the last round's length
    case_timeout_s: float = 300.0


@dataclass
class Outcome:
    """The measurements: the suite's rows (the results schema), the direct side's per-process
    figures by framework, and what went wrong where."""

    suite_rows: list[dict[str, Any]]
    direct: dict[str, list[list[dict[str, Any]]]]
    rounds: int = 0
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass(frozen=True)
class Pair:
    """One case's two figures over processes."""

    framework: str
    case: str
    suite: stats.ProcessSummary
    direct: stats.ProcessSummary

    @property
    def direct_contains_suite(self) -> bool:
        return self.direct.has_interval and self.direct.low <= self.suite.median <= self.direct.high

    @property
    def suite_contains_direct(self) -> bool:
        return self.suite.has_interval and self.suite.low <= self.direct.median <= self.suite.high

    @property
    def ratio(self) -> float:
        return self.suite.median / self.direct.median if self.direct.median > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "case": self.case,
                "suite": {"median_s": self.suite.median, "low_s": self.suite.low, "high_s": self.suite.high, "n": self.suite.n},
                "direct": {"median_s": self.direct.median, "low_s": self.direct.low, "high_s": self.direct.high, "n": self.direct.n},
                "direct_contains_suite": self.direct_contains_suite, "suite_contains_direct": self.suite_contains_direct,
                "ratio": self.ratio}


def case_label(workload: str, params: Mapping[str, Any], dtype: str) -> str:
    from bench.summary import describe_params

    return f"{workload} {describe_params(params_key(params))} {dtype}"


def select_cases(suite: str, workloads: Sequence[str] | None, dtypes: Sequence[str] | None,
                 params: Sequence[Mapping[str, Any]] | None) -> list[CaseSpec]:
    """The suite's case set narrowed by workload and dtype, or (params given: one workload)
    those parameters in each dtype asked for (default fp32)."""
    if params:
        return [(workloads[0], dict(p), d) for p in params for d in (dtypes or ["fp32"])]  # type: ignore[index]
    return [c for c in CASES[suite] if (not workloads or c[0] in workloads) and (not dtypes or c[2] in dtypes)]


# -- measuring ------------------------------------------------------------------------------
def _direct_device(study: Study, framework: str, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The device the direct side uses: the one asked for, or with `auto` the backend the
    suite's worker really ran on (like with like), None while no suite row of it is ok."""
    if study.device != "auto":
        return study.device
    backends = [r.get("backend") for r in rows if r.get("framework") == framework and r.get("status") == "ok"]
    return next((b for b in backends if b), None)


def direct_process(framework: str, device: str, study: Study) -> list[dict[str, Any]] | str:
    """One fresh direct process of `framework`: its figures, or the reason it gave none."""
    job = {"framework": framework, "device": device, "repeat": study.repeat, "warmup_s": study.direct_warmup_s,
           "cases": [[w, dict(p), d] for w, p, d in study.cases]}
    cmd = child.command(sys.executable, "bench.direct", json.dumps(job))
    return direct.run_child(cmd, child.environment(), direct.TAG, DIRECT_TIMEOUT_S)


def _direct_round(study: Study, outcome: Outcome, r: int,
                  run_direct: Callable[[str, str, Study], list[dict[str, Any]] | str]) -> None:
    for fw in study.frameworks:
        device = _direct_device(study, fw, outcome.suite_rows)
        if device is None:
            outcome.notes.append(f"{fw} direct process {r}: not run (no ok suite row says which device {fw} uses)")
            continue
        got = run_direct(fw, device, study)
        if isinstance(got, str):
            outcome.notes.append(f"{fw} direct process {r}: failed: {got[:200]}")
        else:
            outcome.direct[fw].append(got)


def measure_study(study: Study, writer: ResultsWriter, run_id: str,
                  on_round: Callable[[int, float], None] | None = None,
                  run_direct: Callable[[str, str, Study], list[dict[str, Any]] | str] = direct_process) -> Outcome:
    """Both sides in `study.processes` interleaved rounds; the suite's rows go to `writer`."""
    config = RunConfig(suite="full", device=study.device, timings=("queued",), case_timeout_s=study.case_timeout_s,
                       protocol=measure.Protocol(budget_s=study.budget_s, energy=False))
    runner = Runner(config, writer, run_id)
    outcome = Outcome(writer.rows, {fw: [] for fw in study.frameworks})
    started, last = time.monotonic(), 0.0
    for r in range(study.processes):
        if r and study.deadline_s is not None and time.monotonic() - started + last > study.deadline_s:
            outcome.notes.append(f"deadline {study.deadline_s:g} s: stopped after {r} rounds ({last:.0f} s a round)")
            break
        t0 = time.monotonic()
        suite = [Case(fw, w, p, d, "eager", process=r) for fw in study.frameworks for w, p, d in study.cases]
        for side in (("suite", "direct") if r % 2 == 0 else ("direct", "suite")):
            if side == "suite":
                runner.run(suite)
            else:
                _direct_round(study, outcome, r, run_direct)
        outcome.rounds, last = r + 1, time.monotonic() - t0
        if on_round:
            on_round(r, last)
    outcome.wall_s = time.monotonic() - started
    return outcome


# -- summarising ----------------------------------------------------------------------------
def suite_figures(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Each (framework, case label)'s per-process figures from the suite's rows: a process's
    queued median, from its ok rows whose output matched the reference."""
    found: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("correct") is False or not r.get("median_s"):
            continue
        label = case_label(r["workload"], json.loads(r["params"]), r["dtype"])
        found.setdefault((r["framework"], label), {})[int(r.get("process") or 0)] = float(r["median_s"])
    return {key: list(by_process.values()) for key, by_process in found.items()}


def pairs(outcome: Outcome) -> tuple[list[Pair], list[str]]:
    """One Pair per framework and case both sides measured, and a line for each case one side lacks."""
    suite = suite_figures(outcome.suite_rows)
    found, missing = [], []
    for fw, processes in outcome.direct.items():
        direct_figures: dict[str, list[float]] = {}
        for proc in processes:
            for c in proc:
                direct_figures.setdefault(case_label(c["workload"], c["params"], c["dtype"]), []).append(c["queued"])
        for label in sorted(set(direct_figures) | {lab for f, lab in suite if f == fw}):
            s, d = (stats.summarize_processes(side.get(key, [])) for side, key in ((suite, (fw, label)), (direct_figures, label)))
            if s.n == 0 or d.n == 0:
                missing.append(f"{fw} {label}: {'no ok suite row' if s.n == 0 else 'no direct figure'}")
                continue
            found.append(Pair(fw, label, s, d))
    return found, missing


def _interval(s: stats.ProcessSummary) -> str:
    if not s.has_interval:
        return f"{fmt_time(s.median)} (one process: no interval)"
    return f"{fmt_time(s.median)} [{fmt_time(s.low)}–{fmt_time(s.high)}]"


def table(found: Sequence[Pair], title: str) -> Any:
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for col in ("framework", "case", "suite [95%]", "n", "direct [95%]", "n", "direct ∋ suite", "suite ∋ direct", "suite/direct"):
        t.add_column(col, justify="right" if col in ("n", "suite/direct") else "left")
    for p in found:
        t.add_row(escape(p.framework), escape(p.case), _interval(p.suite), str(p.suite.n), _interval(p.direct), str(p.direct.n),
                  "yes" if p.direct_contains_suite else "NO", "yes" if p.suite_contains_direct else "NO", f"{p.ratio:.3f}")
    return t


def verdict_line(found: Sequence[Pair]) -> str:
    both = sum(p.direct_contains_suite and p.suite_contains_direct for p in found)
    return f"{both} of {len(found)} cases: each side's interval contains the other side's median"


# -- the command ----------------------------------------------------------------------------
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def study_from_args(args: Any) -> Study:
    """The study the options ask for; UsageError (one line, exit 2) when they select no case."""
    params = None
    if args.params:
        from bench.catalog import parse_params

        if len(args.workload or []) != 1:
            raise UsageError(f"--params needs exactly one --workload (choose from: {', '.join(direct.WORKLOADS)})")
        try:
            params = [parse_params(args.workload[0], text) for text in args.params]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    cases = select_cases(args.suite, args.workload, args.dtype, params)
    if not cases:
        raise UsageError(f"no cases: the {args.suite} suite's fidelity cases are "
                         + "; ".join(case_label(*c) for c in CASES[args.suite]) + " (-p gives others)")
    return Study(frameworks=tuple(dict.fromkeys(args.framework or FRAMEWORKS)), cases=tuple(cases), device=args.device,
                 processes=args.processes, budget_s=args.budget, repeat=args.repeat,
                 direct_warmup_s=args.direct_warmup, deadline_s=args.deadline)


def installed(frameworks: Sequence[str]) -> tuple[list[str], list[str]]:
    """The frameworks importable here, and a line for each that is not (with its install hint)."""
    import importlib.util

    from bench.catalog import FRAMEWORKS as SPECS

    found, lines = [], []
    for fw in frameworks:
        try:
            present = importlib.util.find_spec(SPECS[fw].import_name) is not None
        except ModuleNotFoundError:  # the parent of a dotted name ("mlx" of "mlx.core") is absent
            present = False
        if not present:
            lines.append(f"{fw}: not installed ({SPECS[fw].install_hint}); left out")
        else:
            found.append(fw)
    return found, lines


def cmd_fidelity(args: Any, console: Any) -> int:
    """`bench fidelity` (its options: bench.cli.add_fidelity_parser). Exit 0 with the table,
    2 when no case could be measured on both sides."""
    study = study_from_args(args)
    present, absent = installed(study.frameworks)
    for line in absent:
        console.print(escape(line))
    if not present:
        raise UsageError(f"none of {', '.join(study.frameworks)} is installed here")
    study = replace(study, frameworks=tuple(present))
    run_id = args.run_id or f"fidelity-{new_run_id()}"
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as scratch:
        writer = ResultsWriter((args.out or Path(scratch)) / f"{run_id}.parquet")
        console.print(escape(f"fidelity: {len(study.cases)} cases × {', '.join(study.frameworks)}, {study.processes} "
                             f"fresh processes a side, device {study.device}; load average {_load()}"))
        outcome = measure_study(study, writer, run_id, on_round=lambda r, s: console.print(
            f"round {r + 1}/{study.processes}: {s:.1f} s"))
    found, missing = pairs(outcome)
    for line in [*outcome.notes, *missing]:
        console.print(escape(line))
    if found:
        console.print(table(found, escape(f"suite against direct, queued per call ({outcome.rounds} rounds, "
                                          f"{outcome.wall_s:.0f} s; load average after {_load()})")))
        console.print(verdict_line(found))
    if args.out:
        console.print(escape(f"suite rows → {writer.path}"))
    if args.json:
        from bench import safe_write

        safe_write.write_text(args.json, json.dumps({"pairs": [p.to_dict() for p in found], "direct": outcome.direct,
                                                     "notes": [*outcome.notes, *missing], "rounds": outcome.rounds}, indent=1))
    if not found:
        console.print("nothing to compare: no case was measured on both sides (the lines above say why)")
        return 2
    return 0
