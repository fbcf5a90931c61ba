"""The reliability audit's machinery: running `bench` as a user would, judging an outcome
against the CLI's contract, and recording one verdict per case of the audit tables
(scripts/audit_cases_first.py, scripts/audit_cases_second.py; scripts/reliability_audit.py
runs them).

The contract every case is held to: exit 0, 1 or 2 (130 after Ctrl-C); exactly one line on
stderr with exit 2; no traceback; plus the case's own expectation from the tables.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results import read_results  # noqa: E402

FAST = ["-f", "torch", "--budget", "0.2"]
# The console script, as the audit ran it (`python -m bench` would itself put the working
# directory on sys.path, which S9 is about); PYTHONPATH puts this checkout first.
_SCRIPT = Path(sys.executable).parent / "bench"
BENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-P", "-m", "bench"]


@dataclass(frozen=True)
class Case:
    """One row of an audit table: what was done, what good behaviour is, and the defects it
    showed: `defects` in the 2026-12-03 numbering (D17–D41), `was` in the 2026-11-29 one."""

    id: str
    what: str
    expected: str
    defects: tuple[str, ...] = ()
    was: tuple[str, ...] = ()


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def contract(self) -> str | None:
        """Why the generic contract is broken, or None."""
        if "Traceback" in self.text:
            return "traceback"
        if self.rc == 124 and "timed out after" in self.err:
            return "hung (killed by the audit)"
        if self.rc not in (0, 1, 2):
            return f"exit {self.rc}"
        if self.rc == 2 and len([ln for ln in self.err.splitlines() if ln.strip()]) != 1:
            return f"exit 2 with {len(self.err.splitlines())} stderr lines"
        return None

    def summary(self) -> str:
        err = " ".join(self.err.split())
        return f"exit {self.rc}" + (f": {err[:110]}" if err else "")


class Audit:
    def __init__(self, scratch: Path) -> None:
        self.s = scratch
        self.rows: list[tuple[str, str, str]] = []
        self.mounts: list[Path] = []
        self.spawned: list[subprocess.Popen] = []
        self.root = os.geteuid() == 0
        self.cases: dict[str, Case] = {}  # id → the table's case, for the "defect then" column

    # -- running ----------------------------------------------------------------------------
    def bench(self, *args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None,
              prefix: tuple[str, ...] = ()) -> Outcome:
        return self.command([*prefix, *BENCH, *args], cwd=cwd, timeout=timeout, env=env)

    def command(self, argv: list[str], cwd: Path | None = None, timeout: float = 600, env: dict | None = None,
                stdin: str | None = None) -> Outcome:
        """Any command, in its own session; one that outlives `timeout` is killed with its
        children and reads as exit 124 (`timed out` on stderr), as timeout(1) reports it."""
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd or self.s, env=full_env, stdin=subprocess.PIPE if stdin else None,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            out, err = proc.communicate()
            rc, err = 124, err + f"\ntimed out after {timeout:g} s"
        return Outcome(rc, out, err, time.monotonic() - started)

    def spawn(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
        proc = subprocess.Popen([*BENCH, *args], cwd=cwd or self.s, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.spawned.append(proc)
        return proc

    def stop_all(self) -> None:
        """Every process group this audit spawned and left running (a hung case) is ended."""
        for proc in self.spawned:
            if proc.poll() is None:
                kill_group(proc.pid)

    def record(self, case: str, outcome: str, good: bool | None) -> None:
        verdict = "n/a" if good is None else ("good" if good else "defect")
        text = " ".join(outcome.split())[:200].replace("|", "\\|")
        self.rows.append((case, text, verdict))
        known = self.cases.get(case)
        then = ", ".join(known.defects + known.was) if known else ""
        print(f"| {case} | {then or '—'} | {text} | {verdict} |", flush=True)

    def expect(self, case: str, o: Outcome, rc: int | set[int] | None = None, contains: str = "",
               extra: bool = True, note: str = "") -> None:
        broken = o.contract()
        rcs = {rc} if isinstance(rc, int) else rc
        good = broken is None and (rcs is None or o.rc in rcs) and contains in o.text and extra
        self.record(case, (note + " " if note else "") + (broken + "; " if broken else "") + o.summary(), good)

    def startup_s(self) -> float:
        """Seconds `bench` takes to load and refuse a bad option right now: time limits in the
        cases are this plus the margin the case is about (on the audit's 2-core VM, shared by
        other jobs, loading alone took 3-20 s depending on its neighbours)."""
        return self.bench("run", "--threads", "0").seconds

    # -- fixtures ---------------------------------------------------------------------------
    def mount(self, name: str, options: str) -> Path | None:
        if not self.root:
            return None
        path = self.s / name
        path.mkdir(exist_ok=True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]).returncode != 0:
            return None
        self.mounts.append(path)
        return path

    def unmount_all(self) -> None:
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(path)])

    def real_results(self) -> Path:
        """A real run (torch, 2 workloads): the base of the crafted files, like the audit's."""
        o = self.bench("run", *FAST, "-w", "matmul,stream", "-d", "fp32,bf16", "-o", "results", "--run-id", "real")
        assert o.rc == 0, o.err
        return self.s / "results" / "real.parquet"


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit(src: Path, dst: Path, changes: dict[str, pa.Array | list], metadata: dict | None = None) -> Path:
    table = pq.read_table(src)
    for name, values in changes.items():
        column = values if isinstance(values, pa.Array) else pa.array(values)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    meta = table.schema.metadata if metadata is None else metadata
    pq.write_table(table.replace_schema_metadata(meta), dst)
    return dst



def fill_up(path: Path) -> int:
    """Write zeros to `path` until its file system is full (ENOSPC); the bytes written. The
    disk-full case fills a tmpfs while a run writes to it, so the next row cannot fit."""
    written, block = 0, b"\0" * (64 * 1024)
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                n = fh.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    return written
                block = block[: len(block) // 2]  # the last pages, down to the last byte
                continue
            written += n


def workers_of(runner_pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:]
            if line.split()[1] == str(runner_pid) and "bench.worker" in line]


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def rows_in(path: Path) -> int:
    try:
        return len(read_results(path))
    except Exception:  # noqa: BLE001 — the audit asks whether it is readable at all
        return -1


