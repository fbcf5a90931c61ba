"""Runs cases in worker processes (one framework per process; with `bench run --processes N`
each framework's cases run in N fresh processes, interleaved across frameworks by
bench.plan.interleave), and writes each row, with the process it came from, as it lands.

The parent never measures: it blocks on the worker's pipe (select with a deadline, no
polling loop, so it steals no core from the measurement), enforces the per-case
time-out, restarts a worker that died or hung, and hands each finished row to the
ResultsWriter before starting the next case.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from bench import case_cache, child, measure
from bench.catalog import FRAMEWORKS, FrameworkSpec
from bench.machine import machine_info
from bench.plan import Case, CaseMessage, plan  # noqa: F401  (plan: re-exported for callers that still import it from here)
from bench.results import ResultsWriter, complete_row
from workloads import WORKLOADS


@dataclass(frozen=True)
class RunConfig:
    suite: str = "quick"
    device: str = "auto"
    threads: int | None = None
    timings: tuple[str, ...] = measure.TIMING_KINDS
    protocol: measure.Protocol = field(default_factory=measure.Protocol)
    case_timeout_s: float = 300.0
    max_start_timeout_s: float = 180.0
    min_start_timeout_s: float = 30.0
    # However busy the machine, a start still using CPU but without a hello after this long
    # is given up (an import spinning forever must end too); see WorkerProcess.await_hello.
    start_limit_s: float = 600.0
    pythons: Mapping[str, str] = field(default_factory=dict)  # framework -> interpreter
    cpus: tuple[int, ...] = ()  # bind every worker to these CPUs (Linux); () = where the OS puts it
    # A persistent compile cache shared by the run's processes (JAX's compilation cache): the
    # first process compiles, the later ones may load; each row's compile_cache says which.
    # None: none is set up (a JAX_COMPILATION_CACHE_DIR of the user's own is always respected).
    compile_cache_dir: Path | None = None
    # Cases of a workload marked shared_inputs that several worker processes run build their
    # inputs and reference once, in the run's bench.case_cache folder beside its logs.
    share_inputs: bool = True

    @property
    def start_timeout_s(self) -> float:
        """How long a starting worker may go without answering and without using CPU:
        --case-timeout, but at least 30 s (importing TensorFlow on a busy CPU takes seconds; a
        short case limit must not fail every start) and at most 180 s. It once was a fixed
        180 s, so a worker hanging while starting cost 3 minutes whatever --case-timeout said.
        A start that keeps using CPU is waited on longer, up to start_limit_s (await_hello):
        on a machine at load 17 a torch start took over 30 s, and the run gave torch up."""
        return min(self.max_start_timeout_s, max(self.case_timeout_s, self.min_start_timeout_s))


# The worker starts as every child does (bench.child): no working directory on sys.path, so
# a numpy.py lying there never runs inside it; with --cpus it binds itself before importing.
WORKER_BOOTSTRAP = child.bootstrap("bench.worker")


# CPU seconds a starting worker must use to count as progressing: its heartbeat thread's own
# CPU is left out of the figure, so a sleeping import never reaches it
START_PROGRESS_CPU_S = 0.05

MAX_STRAY_LINES = 1000  # non-protocol lines tolerated on a worker's pipe (banners), then it is not one


class WorkerLost(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PipeProcess:
    """A child process that answers JSON lines on stdin with JSON lines on stdout (one
    message per line, each with a `type`), its stderr appended to a log: the receiving,
    the time-outs and the clean-up a worker and a reference tool's process share."""

    noun = "worker"  # what the row's reason calls it when it dies or hangs

    def __init__(self, cmd: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=dict(env), start_new_session=True
            )
        except OSError as exc:  # the interpreter vanished or lost its x bit since the CLI checked it
            self._log.close()
            raise WorkerLost("error", f"cannot start {cmd[0]}: {exc.strerror or exc}") from None  # cmd[0]: the interpreter
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def receive(self, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        stray, first = 0, ""
        while True:
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._selector.select(remaining):
                    self.kill()
                    raise WorkerLost("timeout", f"no answer within {timeout_s:g}s while {what}; {self.noun} killed")
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    code = self.proc.wait()
                    raise WorkerLost("error", f"{self.noun} died while {what} ({_exit_description(code)}){self._log_tail()}")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = _protocol_message(line)
            if message is not None:
                return message
            # e.g. a conda-style wrapper's banner before the worker started: log it, read on
            stray += 1
            if stray > MAX_STRAY_LINES:  # something that only talks (`yes`-like): not a worker
                self.kill()
                raise WorkerLost("error", f"no {self.noun} message while {what}: the interpreter printed "
                                          f"{MAX_STRAY_LINES} other lines, the first: {first[:120]!r}")
            if stray == 1:
                first = line.decode(errors="replace")
            self._log.write(b"[not a worker message] " + line[:2000] + b"\n")
            self._log.flush()

    def send(self, message: Mapping[str, Any]) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            code = self.proc.wait()
            raise WorkerLost("error", f"{self.noun} gone before the case started ({_exit_description(code)}){self._log_tail()}")

    def _log_tail(self) -> str:
        self._log.flush()
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return f"; last log line: {lines[-1][:300]}" if lines else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "exit"})
                self.proc.wait(timeout=30)
            except (WorkerLost, subprocess.TimeoutExpired):
                self.kill()
        self._close()

    def _close(self) -> None:
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()


class WorkerProcess(PipeProcess):
    """One live worker: a framework imported in a process of its own."""

    def __init__(self, spec: FrameworkSpec, env_extra: Mapping[str, str], config: RunConfig, log_path: Path) -> None:
        self.spec = spec
        python = config.pythons.get(spec.name, sys.executable)
        cmd = child.command(python, "bench.worker", "--adapter", spec.adapter, "--framework", spec.name, "--device", config.device)
        env = child.environment({"PYTHONUNBUFFERED": "1"}, cpus=config.cpus)
        if config.threads:
            cmd += ["--threads", str(config.threads)]
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "PJRT_NPROC"):
                env[var] = str(config.threads)
        if config.compile_cache_dir is not None and "JAX_COMPILATION_CACHE_DIR" not in env:
            env["JAX_COMPILATION_CACHE_DIR"] = str(Path(config.compile_cache_dir).absolute() / "jax")
            # JAX keeps only compiles over 1 s by default; the quick suite's take 0.1-10 s each
            env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        env.update(env_extra)
        super().__init__(cmd, env, log_path)

    def await_hello(self, config: RunConfig) -> dict[str, Any]:
        """The worker's hello, waited on for as long as the start makes progress.

        A worker that is still importing its framework sends `starting` heartbeats carrying
        the CPU time its process has used (bench.worker.Channel). Each window of
        `config.start_timeout_s` in which that CPU time grew buys another window, up to
        `config.start_limit_s` in all: a start slowed by a busy machine is waited on, while an
        import that sleeps, waits on a lock or is stopped (SIGSTOP sends nothing) is killed
        after one window without progress, as before. Telling the two apart is what lets
        the runner give a framework up after one failed start (Runner._lost_at_start)
        without giving up one that was only slow."""
        what = f"starting {self.spec.name}"
        window = config.start_timeout_s
        began = time.monotonic()
        limit = began + max(config.start_limit_s, window)
        progress_at, progress_cpu, beats = began, 0.0, 0
        while True:
            deadline = min(progress_at + window, limit)
            try:
                message = self.receive(deadline - time.monotonic() if beats else window, what)
            except WorkerLost as lost:
                if lost.status != "timeout" or not beats:
                    raise  # died while starting, or never said a word: as receive says
                waited = time.monotonic() - began
                if deadline == limit:
                    raise WorkerLost("timeout", f"no answer within {waited:.0f}s while {what}, though it kept "
                                                f"using CPU (limit {config.start_limit_s:g}s); worker killed") from None
                raise WorkerLost("timeout", f"no answer within {waited:.0f}s while {what}, and no CPU used in its "
                                            f"last {window:g}s (hung); worker killed") from None
            if message.get("type") != "starting":
                return message
            beats += 1
            cpu = message.get("cpu_s")
            if isinstance(cpu, (int, float)) and cpu - progress_cpu >= START_PROGRESS_CPU_S:
                progress_at, progress_cpu = time.monotonic(), cpu


def _protocol_message(line: bytes) -> dict[str, Any] | None:
    """A worker message is one JSON object with a `type`; anything else on the pipe was
    printed by something else (an interpreter wrapper, a sitecustomize) and is not ours."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) and "type" in message else None


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Runner:
    """Runs a plan, one row per case, each written before the next case starts."""

    def __init__(
        self,
        config: RunConfig,
        writer: ResultsWriter,
        run_id: str,
        frameworks: Mapping[str, FrameworkSpec] = FRAMEWORKS,
        on_row: Callable[[Case, dict[str, Any]], None] | None = None,
        on_start: Callable[[Case], None] | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.run_id = run_id
        self.frameworks = frameworks
        self.on_row = on_row or (lambda case, row: None)
        self.on_start = on_start or (lambda case: None)
        self.machine = machine_info()
        self.log_dir = writer.path.with_suffix(".logs")
        self._worker: WorkerProcess | None = None
        self._worker_key: tuple[str, int, tuple[tuple[str, str], ...]] | None = None
        self._hello: dict[str, dict[str, Any]] = {}  # framework -> its last worker's hello
        self._unavailable: dict[str, dict[str, Any]] = {}  # framework -> failed hello (skip the rest)

    def run(self, cases: Iterable[Case]) -> list[dict[str, Any]]:
        """Run each case; return its rows as written (the results schema's shape)."""
        rows = []
        cases = list(cases)
        last_use = case_cache.shared_keys(cases, {name: w.shared_inputs for name, w in WORKLOADS.items()})
        cache_root = case_cache.create(self.log_dir / case_cache.FOLDER) if last_use and self.config.share_inputs else None
        try:
            for index, case in enumerate(cases):
                self.on_start(case)
                started = time.perf_counter()
                key = case_cache.case_key(case.workload, case.params, case.dtype)
                entry = cache_root / case_cache.entry_name(key) if cache_root is not None and key in last_use else None
                measured = self._run_one(case, entry)
                if entry is not None and last_use[key] == index:  # no later case needs it
                    case_cache.remove(entry)
                measured["case_wall_s"] = time.perf_counter() - started
                row = complete_row(
                    case, measured, run_id=self.run_id, suite=self.config.suite, device_requested=self.config.device,
                    machine=self.machine, hello=self._hello.get(case.framework, {}),
                )
                self.writer.append(row)
                rows.append(row)
                self.on_row(case, row)
        finally:
            self._stop_worker(kill=sys.exc_info()[0] is not None)
            if cache_root is not None:
                case_cache.remove(cache_root)
        return rows

    def _run_one(self, case: Case, inputs_cache: Path | None = None) -> dict[str, Any]:
        spec = self.frameworks[case.framework]
        if case.framework in self._unavailable:
            return dict(self._unavailable[case.framework])
        try:
            worker = self._ensure_worker(spec, case.dtype, case.process)
        except WorkerLost as lost:
            return self._lost_at_start(spec, lost)
        if worker is None:
            return dict(self._unavailable[case.framework])
        message = CaseMessage.for_case(case, self.config.timings, self.config.protocol, self.config.suite,
                                       str(inputs_cache.absolute()) if inputs_cache is not None else "")
        try:
            worker.send(message.to_json())
            reply = worker.receive(self.config.case_timeout_s, f"running {case.label}")
        except WorkerLost as lost:
            self._stop_worker(kill=True)
            return {"status": lost.status, "reason": lost.reason}
        return reply["row"]

    def _lost_at_start(self, spec: FrameworkSpec, lost: WorkerLost) -> dict[str, Any]:
        """A worker that died or hung while importing its framework will do so again for the
        next case: the framework is unavailable for the rest of the run, with the reason on
        each of its rows. Retrying cost the start time-out once per case (a hung import:
        ~108 minutes for the quick suite's torch cases; a broken TF plugin: one TF import per case)."""
        self._unavailable[spec.name] = {
            "status": lost.status,
            "reason": f"worker failed to start: {lost.reason} ({spec.name} is not started again in this run)",
        }
        return dict(self._unavailable[spec.name])

    def _ensure_worker(self, spec: FrameworkSpec, dtype: str, process: int = 0) -> WorkerProcess | None:
        env = spec.worker_env(dtype, self.config.device)
        key = (spec.name, process, tuple(sorted(env.items())))  # a new process index is a fresh worker
        if self._worker is not None and self._worker_key == key and self._worker.proc.poll() is None:
            return self._worker
        self._stop_worker(kill=False)
        log = self.log_dir / f"{spec.name}.log"
        worker = WorkerProcess(spec, env, self.config, log)
        try:
            hello = worker.await_hello(self.config)
        except BaseException:  # Ctrl-C while it starts: its own session would outlive us
            worker.kill()
            raise
        if not hello.get("ok"):
            worker.close()
            reason = hello["reason"]
            if hello.get("status") == "skipped":
                reason += f"; install it with: {spec.install_hint}"
            self._unavailable[spec.name] = {"status": hello.get("status", "error"), "reason": reason}
            return None
        self._worker, self._worker_key = worker, key
        self._hello[spec.name] = hello
        return worker

    def _stop_worker(self, kill: bool) -> None:
        if self._worker is not None:
            (self._worker.kill if kill else self._worker.close)()
        self._worker, self._worker_key = None, None


class ReferenceProcess(PipeProcess):
    """`python -m bench.reference --serve TOOL`: one reference tool imported once, answering
    one case at a time (bench.reference.serve)."""

    noun = "reference process"


def _reference_process(runner: Runner, tool: str, case: Case, env: Mapping[str, str],
                       live: dict[tuple[Any, ...], ReferenceProcess]) -> list[dict[str, Any]]:
    """One reference row from the tool's serving process, started on first use and kept in
    `live` for the tool's next rows, within the case time-out: a row that hangs or kills its
    process costs that row, and the next row starts a new process. What the tool prints
    goes to the run's log folder."""
    from workloads import params_key

    python = runner.config.pythons.get(case.framework, sys.executable)
    key = (tool, python, tuple(sorted(env.items())))
    if key not in live:
        for other in list(live):  # one tool's process at a time: its model and device memory, not two
            live.pop(other).close()
        try:
            live[key] = ReferenceProcess(child.command(python, "bench.reference", "--serve", tool), env, runner.log_dir / f"reference-{tool}.log")
        except WorkerLost as lost:
            return [{"status": lost.status, "reason": f"{tool} reference: {lost.reason}"}]
    process = live[key]
    try:
        process.send({"op": "case", "params": dict(case.params), "dtype": case.dtype, "mode": case.mode})
        message = process.receive(runner.config.case_timeout_s, f"running the {tool} reference for {params_key(case.params)}")
    except WorkerLost as lost:
        live.pop(key, None)
        process.kill()
        return [{"status": lost.status, "reason": f"{tool} reference: {lost.reason}"}]
    rows = message.get("rows")
    if message.get("type") != "rows" or not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return [{"status": "error", "reason": f"{tool} reference answered something else: {str(message)[:200]}"}]
    return rows


def run_references(runner: Runner, cases: Iterable[Case]) -> list[dict[str, Any]]:
    """Reference rows (bench.reference) beside the generate cases among `cases`: for each
    case's framework and mode that has one (bench.reference.REFERENCES: transformers'
    dynamic cache beside torch eager, its static cache beside torch compiled, mlx-lm beside
    MLX eager), one model build per row and the case time-out, each row completed and
    written as it lands (a reference that cannot run the case, e.g. transformers at int4,
    is written without starting anything). A tool's rows run one after another in one
    process of its own (its imports paid once); tools in the order they first appear.
    Their `timing` is "reference": never ranked."""
    import dataclasses

    from bench.reference import REFERENCES, refusal
    from workloads import params_key

    jobs: list[tuple[str, Case]] = []
    seen = set()
    for case in cases:
        tool = REFERENCES.get((case.framework, case.mode))
        key = (case.framework, case.mode, params_key(case.params), case.dtype)
        if case.workload != "generate" or tool is None or key in seen:
            continue
        seen.add(key)
        jobs.append((tool, case))
    tools = list(dict.fromkeys(tool for tool, _ in jobs))
    jobs.sort(key=lambda job: tools.index(job[0]))  # stable: each tool's rows together, in case order
    rows = []
    live: dict[tuple[Any, ...], ReferenceProcess] = {}  # the tool's serving process, at most one
    try:
        for tool, case in jobs:
            env = child.environment()
            env.update(runner.frameworks[case.framework].worker_env(case.dtype, runner.config.device))
            runner.on_start(case)
            started = time.perf_counter()
            refused = refusal(tool, case.params, case.dtype, case.mode)
            for row in [refused] if refused is not None else _reference_process(runner, tool, case, env, live):
                row.setdefault("timing", "reference")
                row.setdefault("implementation", tool)  # a row that never ran still names its tool
                row["case_wall_s"] = time.perf_counter() - started
                full = complete_row(
                    dataclasses.replace(case, mode=row.get("mode", case.mode)), row, run_id=runner.run_id, suite=runner.config.suite,
                    device_requested=runner.config.device, machine=runner.machine, hello=runner._hello.get(case.framework, {}),
                )
                runner.writer.append(full)
                rows.append(full)
                runner.on_row(case, full)
    except BaseException:  # Ctrl-C or a failed write: a busy tool is killed, not waited on
        for process in live.values():
            process.kill()
        raise
    for process in live.values():
        process.close()
    return rows


def new_run_id(now: datetime | None = None) -> str:
    """UTC time (sorts by start) and 32 random bits. The process id once filled that place,
    but it is 1 in every container, so two jobs sharing a results volume collided; the
    writer's exclusive first write refuses the rare collision that remains."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(4)}"
