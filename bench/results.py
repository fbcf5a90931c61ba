"""The results schema, atomic writes, and loading many runs as one table.

One row per case. Each row is on disk before the next case starts: appended to the run's
journal (`bench.journal`, fsynced), while `results/<run-id>.parquet` is rewritten whole (a
temporary file, fsynced, renamed over the old one) after each of the first rows and then
each time the rows not in it reach a quarter of those in it, and once more when the run
ends, when the journal goes. Parquet cannot be appended to, and rewriting it after every row
cost O(rows²) (14 s for 432 rows); this costs O(rows). A crash or Ctrl-C loses at most the
case in flight: `read_results` takes a journal left beside a file (the rows the file lacks).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import journal
from bench.machine import machine_key
from bench.paths import current_umask
from bench.measure import TIMING_FIELDS
from bench.plan import Case
from bench.processes import dedupe
from bench.roofline import plausibility
from workloads import WORKLOADS, params_key

SCHEMA_VERSION = 1

#: Every status a row may have; a file with another is malformed (read_results refuses it).
STATUSES = ("ok", "unsupported", "error", "timeout", "skipped")

_ARROW_TYPES = {float: pa.float64(), int: pa.int64(), bool: pa.bool_(), list: pa.list_(pa.float64())}


def _timing_fields(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}{f.suffix}", _ARROW_TYPES[f.type]) for f in TIMING_FIELDS]


SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int64()),
        pa.field("run_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("suite", pa.string()),
        pa.field("framework", pa.string()),
        pa.field("framework_version", pa.string()),
        pa.field("versions", pa.string()),  # JSON: framework, plugins, backend libraries
        pa.field("device_requested", pa.string()),
        pa.field("backend", pa.string()),
        pa.field("device_name", pa.string()),
        pa.field("workload", pa.string()),
        pa.field("workload_hash", pa.string()),
        pa.field("params", pa.string()),  # JSON, keys sorted
        pa.field("dtype", pa.string()),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("implementation", pa.string()),
        pa.field("math_mode", pa.string()),
        pa.field("timing", pa.string()),  # which timing the unprefixed median_s/... and throughput use
        *_timing_fields(""),
        *_timing_fields("latency_"),
        *_timing_fields("queued_"),
        pa.field("dispatch_overhead_s", pa.float64()),
        pa.field("first_call_s", pa.float64()),
        pa.field("flops", pa.float64()),
        pa.field("bytes_moved", pa.float64()),
        pa.field("tflops", pa.float64()),
        pa.field("gbps", pa.float64()),
        pa.field("peak_device_bytes", pa.int64()),
        pa.field("peak_device_note", pa.string()),
        pa.field("peak_rss_bytes", pa.int64()),
        pa.field("rss_scope", pa.string()),
        pa.field("plausible", pa.bool_()),  # null where no ceiling is known for the device
        pa.field("plausibility_note", pa.string()),
        pa.field("peak_tflops", pa.float64()),  # datasheet peak for this dtype (bench.roofline)
        pa.field("peak_gbps", pa.float64()),
        pa.field("peak_source", pa.string()),
        pa.field("max_rel_error", pa.float64()),
        pa.field("rel_rms_error", pa.float64()),
        pa.field("tolerance", pa.float64()),
        pa.field("effective_precision", pa.string()),
        pa.field("precision_matches", pa.bool_()),
        pa.field("correct", pa.bool_()),
        pa.field("metrics", pa.string()),  # JSON: workload-specific figures (tokens/s, loss curve, ...)
        pa.field("cache_state", pa.string()),
        pa.field("threads", pa.int64()),
        pa.field("case_wall_s", pa.float64()),
        pa.field("host", pa.string()),
        pa.field("os", pa.string()),
        pa.field("chip", pa.string()),
        pa.field("machine", pa.string()),
        pa.field("cpu_count", pa.int64()),
        pa.field("memory_bytes", pa.int64()),
        pa.field("gpu_cores", pa.int64()),  # Apple GPUs: the core count macOS reports (bandwidth and FLOP/s depend on it)
        pa.field("python_version", pa.string()),
        pa.field("suite_version", pa.string()),
        pa.field("barrier_check", pa.string()),  # bench.selfcheck: "valid: ..." / "INVALID: ..." / "not checked: ..."
        pa.field("placement_check", pa.string()),  # "ok: ..." / "partial: ... on the host CPU: ..." / "failed: ..."
        # queued = the plateau of a queue-depth sweep; device time where the framework has events
        pa.field("dispatch_overhead_note", pa.string()),  # why dispatch_overhead_s is 0 or null
        pa.field("queue_depth", pa.int64()),  # k the queued figure was timed at (calls per barrier)
        pa.field("queue_curve_k", pa.list_(pa.int64())),  # the sweep: queue depths tried ...
        pa.field("queue_curve_s", pa.list_(pa.float64())),  # ... and the median per-call seconds at each
        pa.field("queue_plateau", pa.bool_()),  # the sweep ended on a plateau (not on a bound)
        pa.field("queue_stop", pa.string()),  # plateau, memory bound, depth cap or budget
        *_timing_fields("device_"),  # kernel time between device events around one call
        pa.field("device_time_source", pa.string()),
        pa.field("device_time_note", pa.string()),  # why device_* is null
        pa.field("mode", pa.string()),  # eager | compiled (workloads.base.MODES); the compiler is named in `implementation`
        pa.field("cpus", pa.string()),  # the CPUs the worker was bound to (--cpus, read back); null = unbound
        # -- energy per call (bench.energy) and run conditions (bench.conditions) --
        pa.field("energy_j_per_call", pa.float64()),  # joules per call of the primary timing, summed over energy_scope
        pa.field("energy_power_w", pa.float64()),  # mean power of the scope in the energy window
        pa.field("energy_idle_w", pa.float64()),  # mean power of the scope, idle, just before the window
        pa.field("energy_limit_w", pa.float64()),  # the device's stated power limit (NVML); null where none is stated
        pa.field("energy_window_s", pa.float64()),
        pa.field("energy_window_calls", pa.int64()),
        pa.field("energy_window_per_call_s", pa.float64()),  # the window's own per-call time (vs median_s)
        pa.field("energy_source", pa.string()),  # which counters (Zeus reader) were read
        pa.field("energy_scope", pa.string()),  # the rails energy_j_per_call sums: gpu0 | soc.cpu_total+soc.gpu+... | cpu0+dram0
        pa.field("energy_rails", pa.string()),  # JSON: joules per rail read in the window (scope and extra rails)
        pa.field("energy_check", pa.string()),  # the self-check: "ok: ..." / "flagged: ..."
        pa.field("energy_valid", pa.bool_()),  # False = flagged, never in efficiency rankings; null = no energy
        pa.field("energy_note", pa.string()),  # why the energy columns are null (or which extra rail was not read)
        pa.field("tflops_per_watt", pa.float64()),
        pa.field("tokens_per_joule", pa.float64()),  # decode tokens (generate) or batch*seq (training) per joule
        pa.field("joules_per_step", pa.float64()),  # training-step workloads (train_step, lora)
        pa.field("conditions", pa.string()),  # "normal", or what was off: thermal pressure, low power mode, on battery, gpu slowdown
        pa.field("thermal_pressure", pa.string()),  # macOS thermald level, worst of before/after
        pa.field("power_mode", pa.string()),  # macOS Energy Mode (pmset -g powermode), raw integer kept
        pa.field("power_source", pa.string()),  # ac | battery | ups (pmset -g batt)
        pa.field("battery_percent", pa.float64()),
        pa.field("gpu_sm_clock_mhz_before", pa.int64()),  # NVML, before and after the measured calls
        pa.field("gpu_sm_clock_mhz_after", pa.int64()),
        pa.field("gpu_throttle_before", pa.string()),  # NVML clocks-event reasons, decoded
        pa.field("gpu_throttle_after", pa.string()),
        pa.field("cpu_governor", pa.string()),  # Linux cpufreq scaling governor(s)
        pa.field("conditions_note", pa.string()),  # why a condition column is null
        # -- end of energy and run conditions --
        pa.field("process", pa.int64()),  # 0-based index of the fresh worker process of this framework in the run
        pa.field("compile_cache", pa.string()),  # the persistent compile cache the process had, or "none: ..."
    ],
    metadata={b"metalbench_schema_version": str(SCHEMA_VERSION).encode()},
)
COLUMNS = tuple(SCHEMA.names)
COLUMNS_SET = frozenset(COLUMNS)
KEY_COLUMNS = ("framework", "backend", "workload", "params", "dtype", "machine", "mode")
# Without these a file is not usable results; any other column missing from an older file of
# the same schema version (one added since) reads as null.
CORE_COLUMNS = ("run_id", "framework", "backend", "workload", "params", "dtype", "status", "median_s", "machine")

# What each column means, in a user's words. The documentation's schema page is generated
# from these and SCHEMA (bench.schema_doc), so they live beside the schema and nowhere else;
# tests/test_docs.py fails on a column without its line here, or a line without its column.
TIMING_PREFIX_DOCS = {
    "": "the headline timing: a copy of the `timing` column's kind (queued when it was measured, else latency)",
    "latency_": "latency: one call, then the framework's completion barrier (what one synchronous request sees)",
    "queued_": "queued: k calls issued back to back, one barrier, per call (the steady state; k = `queue_depth`)",
    "device_": "device time: the kernel's time between device events around one call (torch CUDA/MPS); "
    "null elsewhere, with `device_time_note`",
}
TIMING_FIELD_DOCS = {
    "median_s": "median seconds per call",
    "mean_s": "mean seconds per call",
    "stdev_s": "standard deviation of the per-call samples",
    "min_s": "fastest per-call sample",
    "ci_low_s": "low end of the median's 95% confidence interval (distribution-free, from order statistics)",
    "ci_high_s": "high end of that interval",
    "n_samples": "number of samples taken",
    "inner_loops": "calls per sample (queued: batches × k)",
    "samples_s": "every sample, as seconds per call",
    "converged": "the interval reached `--precision` before the `--budget` ran out",
}
COLUMN_DOCS = {
    "schema_version": "version of this schema (also in the file's metadata); readers refuse another",
    "run_id": "the run: UTC time and a random suffix, or `bench run --run-id`",
    "timestamp": "when the row was written (UTC)",
    "suite": "quick or full",
    "framework": "torch, tensorflow, jax or mlx",
    "framework_version": "the framework's version",
    "versions": "JSON: the framework, its plugins (tensorflow-metal, jax-metal / jax-mps, mlx-metal) and CUDA, "
    "as the worker imported them",
    "device_requested": "`--device` as given: auto, metal, cuda or cpu",
    "backend": "what really ran: metal, cuda or cpu (nothing falls back silently)",
    "device_name": "the device the framework reported",
    "workload": "the workload's name (`bench list`)",
    "workload_hash": "digest of the workload's definition and the shared modules it uses; the gate never "
    "compares rows whose hashes differ",
    "params": "JSON, keys sorted: the case's parameters",
    "dtype": "the dtype asked for (fp32, tf32, fp16, bf16)",
    "status": "ok, unsupported, error, timeout or skipped",
    "reason": "why, when the status is not a clean ok (the framework's own first line where it refused)",
    "implementation": "the kernel path or compiler that ran, e.g. `jax.nn.dot_product_attention(implementation='cudnn')`",
    "math_mode": "the precision switch set for this dtype, e.g. torch `set_float32_matmul_precision('highest')`",
    "timing": "latency or queued: which kind the unprefixed timing columns and the throughput use; "
    "reference for the rows of other tools",
    "dispatch_overhead_s": "latency − queued median; 0 when the difference is within the two medians' intervals, "
    "null when queued is slower (see `dispatch_overhead_note`)",
    "first_call_s": "the first call of the case in its process, compilation and tracing included; never a sample. "
    "Every process records its own: where a persistent compile cache served it (`compile_cache`) it is a cached "
    "first call, a fact of its own, not a cold one",
    "flops": "floating-point operations of one call, from the workload's own count",
    "bytes_moved": "bytes one call moves, from the workload's own count",
    "tflops": "flops / median_s, in 10¹² per second (SI)",
    "gbps": "bytes_moved / median_s, in 10⁹ bytes per second (SI)",
    "peak_device_bytes": "the framework allocator's peak during the case; null where it has no counter",
    "peak_device_note": "why `peak_device_bytes` is null",
    "peak_rss_bytes": "the worker process's peak resident memory",
    "rss_scope": "case (Linux: the peak was reset before the case) or process (the process-lifetime peak)",
    "plausible": "false when faster than the device's peak allows (a missing barrier looks like this); "
    "null where no peak is known",
    "plausibility_note": "the bound the row was judged against, and the verdict",
    "peak_tflops": "the device's datasheet peak for this dtype",
    "peak_gbps": "the device's datasheet memory bandwidth",
    "peak_source": "where the peak figures come from",
    "max_rel_error": "max|y − ref| / max|ref| against the float64 reference",
    "rel_rms_error": "‖y − ref‖ / ‖ref‖: what the precision classifier reads",
    "tolerance": "the workload's tolerance for `max_rel_error` at this dtype",
    "effective_precision": "the precision the error says really ran: fp32-class, tf32-class, fp16-class, "
    "bf16-class, below-bf16 or not-classified",
    "precision_matches": "the effective precision is the one the dtype promises",
    "correct": "within tolerance and at the promised precision; only correct rows are ranked",
    "metrics": "JSON: the workload's own figures (tokens/s, loss curve, quantization error, …)",
    "cache_state": "warm: the same input buffers every call",
    "threads": "intra-op threads the framework used (`--threads`, else its own default)",
    "case_wall_s": "wall time of the whole case, checking included",
    "host": "host name",
    "os": "operating system and version",
    "chip": "CPU or Apple chip",
    "machine": "the key rows are grouped, ranked and gated by: chip (with its GPU core count on a Mac) and OS, led by the GPU's name for CUDA rows",
    "cpu_count": "logical CPUs of the host",
    "memory_bytes": "the host's memory",
    "gpu_cores": "GPU core count of an Apple chip, from `system_profiler SPDisplaysDataType` (null elsewhere); part of the machine key",
    "python_version": "the worker's Python",
    "suite_version": "the git commit of the suite, `-dirty` with local changes",
    "barrier_check": "the barrier self-check: `valid: …`, `INVALID: …` or `not checked: …`",
    "placement_check": "where the output lived: `ok: …`, `partial: … on the host CPU: …`, `failed: …` or "
    "`not checked: …`",
    "dispatch_overhead_note": "why `dispatch_overhead_s` is 0 or null",
    "queue_depth": "k, the calls per barrier the queued figure was timed at",
    "queue_curve_k": "the queue-depth sweep: the depths tried …",
    "queue_curve_s": "… and the median seconds per call at each",
    "queue_plateau": "the sweep ended on a plateau (false: a bound ended it first)",
    "queue_stop": "why the sweep ended: plateau, memory bound, depth cap or budget",
    "device_time_source": "which events timed the device (and whether the span may include the launch gap)",
    "device_time_note": "why the `device_*` columns are null",
    "mode": "eager or compiled (the compiler is named in `implementation`); part of the ranking and gate keys",
    "cpus": "the CPUs the worker was bound to (`bench run --cpus`), read back from the OS; null when unbound",
    # energy and run conditions (bench.energy, bench.conditions; docs/energy.md)
    "energy_j_per_call": "joules per call of the row's primary timing kind, summed over `energy_scope`; null with "
    "`energy_note` where no counter was read",
    "energy_power_w": "mean power (W) of the scope during the energy window",
    "energy_idle_w": "mean power (W) of the scope, device idle, measured just before the window",
    "energy_limit_w": "the device's stated power limit (NVML); null where none is stated",
    "energy_window_s": "seconds the energy window lasted",
    "energy_window_calls": "calls run inside the energy window",
    "energy_window_per_call_s": "the window's own seconds per call (checked against `median_s`)",
    "energy_source": "the counters read (Zeus's NVML, RAPL or zeus-apple-silicon IOReport reader)",
    "energy_scope": "the rails `energy_j_per_call` sums, `+`-joined (gpu0; soc.cpu_total+soc.gpu+…; cpu0+dram0)",
    "energy_rails": "JSON: joules per rail read in the window",
    "energy_check": "the energy self-check: `ok: …` or `flagged: …` (work not above idle, or above the limit)",
    "energy_valid": "false: flagged by the self-check, never in efficiency rankings; null: no energy measured",
    "energy_note": "why the energy columns are null (or which extra rail was not read)",
    "tflops_per_watt": "TFLOP/s per watt (FLOPs per call / joules per call / 1e12)",
    "tokens_per_joule": "tokens per joule (decode tokens for generate, batch×seq for training)",
    "joules_per_step": "joules per training step (train_step, lora)",
    "conditions": "the run-conditions key: `normal`, or what was off (thermal pressure, low power mode, on battery, "
    "gpu slowdown); rows rank only against rows of the same conditions",
    "thermal_pressure": "macOS thermal pressure level, worst of before/after the measured calls",
    "power_mode": "macOS Energy Mode (`pmset -g` powermode)",
    "power_source": "ac or battery (`pmset -g batt`)",
    "battery_percent": "battery charge in % (`pmset -g batt`); null without a battery",
    "gpu_sm_clock_mhz_before": "NVIDIA SM clock (NVML) before the measured calls",
    "gpu_sm_clock_mhz_after": "NVIDIA SM clock (NVML) after the measured calls",
    "gpu_throttle_before": "NVML clock-event (throttle) reasons before the measured calls",
    "gpu_throttle_after": "NVML clock-event (throttle) reasons after the measured calls",
    "cpu_governor": "Linux cpufreq scaling governor(s)",
    "conditions_note": "why a condition column is null",
    "process": "which fresh worker process of this framework in the run measured the row, from 0 (`bench run "
    "--processes`); a process is identified by run_id, framework and process. Null in files written before it "
    "existed: read as process 0 (one process per framework and run)",
    "compile_cache": "the persistent compile cache the process had: JAX's compilation cache folder, torch "
    "inductor's FX graph cache, or `none: …`; with one, `first_call_s` may be a cached first call, not a cold compile",
}


def timing_column(name: str) -> tuple[str, str] | None:
    """(prefix, field) of a timing column (`queued_median_s` → ("queued_", "median_s")), else None."""
    for prefix in sorted(TIMING_PREFIX_DOCS, key=len, reverse=True):
        suffix = name[len(prefix):]
        if name.startswith(prefix) and suffix in TIMING_FIELD_DOCS and name not in COLUMN_DOCS:
            return prefix, suffix
    return None


def column_doc(name: str) -> str:
    """What column `name` means: its own line, or its timing field's and kind's."""
    timing = timing_column(name)
    if timing is not None:
        return f"{TIMING_FIELD_DOCS[timing[1]]}; {TIMING_PREFIX_DOCS[timing[0]]}"
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    raise KeyError(f"column {name!r} has no description in bench.results.COLUMN_DOCS")


class ResultsError(Exception):
    """A results file that cannot be read as metalbench results; the message says why."""


def complete_row(
    case: Case,
    measured: Mapping[str, Any],
    *,
    run_id: str,
    suite: str,
    device_requested: str,
    machine: Mapping[str, Any],
    hello: Mapping[str, Any],
) -> dict[str, Any]:
    """The one place a row is assembled: the case's identity, the host (`machine_info()`),
    what the worker said when it started (`hello`: backend, device, versions, threads) and
    what it measured (`measured`, which wins where both speak), keyed by `machine_key`,
    judged for plausibility, in the schema's shape (`normalise_row`). This is the row the
    runner writes, hands to `on_row` and returns."""
    versions = hello.get("versions", {})
    row: dict[str, Any] = {
        "run_id": run_id,
        "timestamp": datetime.now(timezone.utc),
        "suite": suite,
        "framework": case.framework,
        "framework_version": next(iter(versions.values()), None),
        "versions": versions,
        "device_requested": device_requested,
        "backend": hello.get("backend"),
        "device_name": hello.get("device_name"),
        "workload": case.workload,
        "workload_hash": WORKLOADS[case.workload].definition_hash(),
        "params": params_key(case.params),
        "dtype": case.dtype,
        "mode": case.mode,
        "process": case.process,
        "compile_cache": hello.get("compile_cache"),
        **machine,
    }
    row.update(measured)
    if row.get("threads") is None:
        row["threads"] = hello.get("threads")
    row["machine"] = machine_key(str(machine["machine"]), row.get("backend"), row.get("device_name"))
    row.update(plausibility(row))
    return normalise_row(row)


def normalise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every schema column present (missing ones null); unknown keys are a bug, not data.
    `complete_row` ends here; rows made outside a run (test fixtures) start here."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise KeyError(f"row has columns outside the schema: {sorted(unknown)}")
    out = {name: row.get(name) for name in COLUMNS}
    out["schema_version"] = SCHEMA_VERSION
    for key in ("versions", "metrics"):
        if isinstance(out.get(key), dict):
            out[key] = json.dumps(out[key], sort_keys=True)
    return out


def write_table_atomically(rows: list[dict[str, Any]] | pa.Table, path: Path, exclusive: bool = False) -> None:
    """Write to a temporary file, fsync, then put it in place. With `exclusive`, the file must
    not exist yet: it is linked into place (atomic, fails if the name is taken), so a file this
    process did not create is never replaced, even by a run racing for the same name."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=SCHEMA)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from a shared folder
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _link_exclusive(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ResultsError(f"{path} already exists (written by another run): not replaced; use another --run-id") from None
    except OSError:  # a file system without hard links: claim the name with O_EXCL, then fill it
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise ResultsError(f"{path} already exists (written by another run): not replaced; use another --run-id") from None
        os.replace(tmp, path)


class ResultsWriter:
    """Owns one run's parquet file; `append` makes a row durable before it returns.

    The file is this run's alone: a name that exists already (or its journal) is refused
    here, before any work, and the first write claims the name exclusively (two runs that
    chose the same id at the same moment cannot overwrite each other: the second one fails).
    Each row goes to the run's journal (`bench.journal`) and the parquet file is rewritten
    from memory on a geometric schedule (`ALWAYS_REWRITE`, `REWRITE_FRACTION`), so the
    writes of a run cost O(rows) rather than O(rows²); `close` (or the end of a `with`
    block, or the writer being dropped) writes the file whole and removes the journal."""

    ALWAYS_REWRITE = 64  # rows: a small run's file is whole after every row, as it always was
    REWRITE_FRACTION = 0.25  # beyond that, rewritten once the rows it lacks reach this share of those it holds

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self.saved_rows = 0  # how many of `rows` are on disk (in the journal; the file may lag)
        self.written_rows = 0  # how many of `rows` the parquet file holds
        self._batches: list[pa.RecordBatch] = []
        self._journal: journal.Journal | None = None
        check_writable(self.path.parent)
        for taken in (self.path, journal.path_for(self.path)):
            if taken.exists() or taken.is_symlink():
                raise ResultsError(f"{taken} already exists: that run id is taken (choose another --run-id)")
        self._finalizer = weakref.finalize(self, ResultsWriter._finish, self.path, self._batches, [None])

    def append(self, row: Mapping[str, Any]) -> None:
        normal = normalise_row(row)
        self.rows.append(normal)
        batch = pa.RecordBatch.from_pylist([normal], schema=SCHEMA)
        self._batches.append(batch)
        try:
            if self.written_rows == 0:  # the first row claims the name (exclusively), then the journal
                self._write()
                self._journal = journal.Journal(journal.path_for(self.path), SCHEMA, 0o666 & ~current_umask())
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, ResultsWriter._finish, self.path, self._batches, [self._journal])
            self._journal.append(batch)
        except BaseException:
            self._batches.pop()
            raise
        self.saved_rows = len(self.rows)
        lacking = len(self._batches) - self.written_rows
        if lacking and (len(self._batches) <= self.ALWAYS_REWRITE or lacking >= self.REWRITE_FRACTION * self.written_rows):
            self._write()

    def _write(self) -> None:
        table = pa.Table.from_batches(self._batches, schema=SCHEMA).combine_chunks()
        write_table_atomically(table, self.path, exclusive=self.written_rows == 0)
        self.written_rows = table.num_rows

    def close(self) -> None:
        """The parquet file whole, then the journal removed. Idempotent."""
        self._finalizer()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _finish(path: Path, batches: list[pa.RecordBatch], held: list[journal.Journal | None]) -> None:
        """Write every row into the file and remove the journal: at `close`, or when a writer
        nobody closed is dropped (tests and scripts that only append). A failure here leaves
        the journal, which readers take."""
        [log] = held
        if log is None:
            return
        try:
            write_table_atomically(pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks(), path)
        except OSError:
            log.close()
            return
        log.close(remove=True)


def check_writable(directory: Path) -> None:
    """Fail before any work starts if results cannot be saved there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ResultsError(f"cannot write results to {directory}: {exc.strerror or exc}") from None


def _files(paths: Iterable[Path | str], notes: list[str] | None = None) -> list[Path]:
    """The results files `paths` name: files as given, folders walked by bench.walk (linked
    sub-folders followed once; a folder not entered again adds a line to `notes`)."""
    from bench.walk import parquet_files

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(parquet_files(p, notes))
        elif p.exists():
            files.append(p)
        else:
            raise ResultsError(f"{p}: no such file or directory")
    if not files:
        raise ResultsError(f"no .parquet files found in {', '.join(map(str, paths))}")
    return _distinct(files)


def _distinct(files: list[Path]) -> list[Path]:
    """Each file once, however often it was named (directly, through its folder, through a
    link): a run read twice would count its processes twice (bench.processes)."""
    from bench.walk import identity

    seen: set[object] = set()
    out = []
    for f in files:
        key: object = identity(f) or str(f)  # unreadable: read_results says why, once
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def read_results(path: Path | str) -> pd.DataFrame:
    """One results file, validated; ResultsError with a one-line reason otherwise."""
    return _frame(read_table(path))


def read_table(path: Path | str) -> pa.Table:
    """One results file as a validated Arrow table (the schema's columns first, in the
    schema's types, then any others); ResultsError with a one-line reason otherwise. Readers
    of many files join these tables and make one DataFrame of them (`load_results`): a
    DataFrame per file, then pandas' concat of thousands of them, was most of the time of
    `bench report` over a folder of 2,000 runs."""
    path = Path(path)
    try:
        table = _read_parquet(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise ResultsError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0]})") from None
    table = _with_journal(table, path)
    meta = table.schema.metadata or {}
    version = meta.get(b"metalbench_schema_version")
    if version is None:
        raise ResultsError(f"{path}: not a metalbench results file (no metalbench schema version in its metadata)")
    try:
        number = int(version)
    except ValueError:
        raise ResultsError(f"{path}: schema version {version[:20]!r} in its metadata is not a number") from None
    if number != SCHEMA_VERSION:
        raise ResultsError(f"{path}: results schema version {number}, this metalbench reads {SCHEMA_VERSION}")
    names = table.column_names  # a property that builds a new list on every access: once, not per column
    present = set(names)
    if len(present) < len(names):  # pq.ParquetFile reads such a file; every lookup by name below would raise
        twice = next(c for c in names if names.count(c) > 1)
        raise ResultsError(f"{path}: column {twice[:60]} appears {names.count(twice)} times")
    missing = [c for c in COLUMNS if c not in present]
    core_missing = [c for c in CORE_COLUMNS if c in missing]
    if core_missing:
        raise ResultsError(f"{path}: missing columns {', '.join(core_missing[:5])}{'…' if len(core_missing) > 5 else ''}")
    for name in missing:  # a column added later within this schema version: null for older files
        table = table.append_column(SCHEMA.field(name), pa.nulls(table.num_rows, SCHEMA.field(name).type))
    table = _conform(table, path)
    table = table.select(list(COLUMNS) + [c for c in table.column_names if c not in COLUMNS_SET])
    _check_values(table, path)
    return table


def _frame(table: pa.Table) -> pd.DataFrame:
    """Validated rows (`read_table`) as a DataFrame, with the mode of rows from files written
    before the `mode` column inferred (`infer_mode`)."""
    df = _to_pandas(table)
    unknown = df["mode"].isna()
    if unknown.any():
        df.loc[unknown, "mode"] = [infer_mode(w, i) for w, i in zip(df.loc[unknown, "workload"], df.loc[unknown, "implementation"])]
    return df


def _plain(table: pa.Table) -> pa.Table:
    """A file's validated table without its pandas metadata and index columns (written by
    pandas' to_parquet): they say nothing about the results, and one file's cannot describe
    the others' once joined, as pandas' concat with ignore_index left their indexes out."""
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    return table.replace_schema_metadata({k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"})


def _join(tables: list[pa.Table]) -> pa.Table | None:
    """`tables` as one table in contiguous columns, or None when columns outside the schema
    hold different types in two of them."""
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _joined(tables: list[pa.Table]) -> pd.DataFrame:
    """Many files' validated tables (`_plain`) as one DataFrame: joined in Arrow, converted
    once; one DataFrame per file where they cannot be joined."""
    joined = _join(tables)
    if joined is None:
        return pd.concat([_frame(t) for t in tables], ignore_index=True)
    return _frame(joined)


def _read_parquet(path: Path) -> pa.Table:
    """A regular file through `pq.ParquetFile` (a quarter of `pq.read_table`'s cost per file,
    its dataset machinery: a folder of 2,000 one-row runs spent most of its reading there);
    anything else through `pq.read_table`, which refuses a FIFO where ParquetFile would wait
    for a writer forever."""
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        regular = False
    if not regular:
        return pq.read_table(path)
    with pq.ParquetFile(path) as parquet:
        return parquet.read()


def _with_journal(table: pa.Table, path: Path) -> pa.Table:
    """The file's rows, or its journal's when that holds more: a run still writing, or one
    that crashed, has rows in its journal the file does not hold yet (ResultsWriter). The
    journal begins with the same rows, so it replaces the file's table rather than adding to it."""
    logged = journal.read(journal.path_for(path))
    if logged is None or logged.num_rows <= table.num_rows:
        return table
    return logged.replace_schema_metadata({**(logged.schema.metadata or {}), **(table.schema.metadata or {})})


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """The table as a DataFrame. pandas parses the file's own `pandas` schema metadata (index
    columns, dtypes) and raises its raw JSONDecodeError/KeyError on a malformed one, which
    crashed every reader; such metadata is only a hint, so it is dropped and the columns read
    as they are (a results file's meaning is its columns, validated above)."""
    try:
        return table.to_pandas()
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
        if meta == (table.schema.metadata or {}):
            raise
        table = table.replace_schema_metadata(meta)
        return table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")]).to_pandas()


# What the implementation of a whole step says when a compiler ran it, in files written before
# the `mode` column existed (JAX's jitted training and decode, TF's tf.function graphs, MLX's
# mx.compile on Metal/CUDA). Every other old row was eager.
_COMPILED_WORDS = ("jax.jit", "tf.function", "mx.compile:", "torch.compile")


def infer_mode(workload: str, implementation: Any) -> str:
    """The mode of a row from a file without the `mode` column: eager, unless the workload is
    timed in both modes and its implementation names a compiler of the whole step."""
    from workloads import WORKLOADS  # results stays importable without the workload registry's cost

    spec = WORKLOADS.get(str(workload))
    if spec is None or "compiled" not in spec.modes or not isinstance(implementation, str):
        return "eager"
    return "compiled" if implementation.startswith(_COMPILED_WORDS) else "eager"


def _same_kind(have: pa.DataType, want: pa.DataType) -> bool:
    """Types a writer could legitimately have produced for a column (pandas widens, older
    pyarrow writes large strings, timestamps in another unit): cast, never reinterpret."""
    t = pa.types
    if t.is_null(have) or have == want:
        return True
    if t.is_string(want):
        return t.is_string(have) or t.is_large_string(have)
    if t.is_floating(want):
        return t.is_floating(have) or t.is_integer(have)
    if t.is_integer(want):
        return t.is_integer(have)
    if t.is_timestamp(want):
        return t.is_timestamp(have)
    if t.is_list(want):
        return (t.is_list(have) or t.is_large_list(have)) and _same_kind(have.value_type, want.value_type)
    return False


def _conform(table: pa.Table, path: Path) -> pa.Table:
    """Every schema column in its schema type; ResultsError naming the first that is not
    (text where numbers belong read as "true" or crashed a cast far from the file)."""
    for name in COLUMNS:
        want = SCHEMA.field(name).type
        have = table.schema.field(name).type
        if have == want:
            continue
        if not _same_kind(have, want):
            raise ResultsError(f"{path}: column {name} holds {have}, expected {want}")
        try:
            column = table.column(name).cast(want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ResultsError(f"{path}: column {name} cannot be read as {want} ({str(exc).splitlines()[0][:120]})") from None
        table = table.set_column(table.schema.get_field_index(name), SCHEMA.field(name), column)
    return table


def _json_object(text: Any) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (TypeError, ValueError):
        return False


def _check_values(table: pa.Table, path: Path) -> None:
    """Values every reader relies on: a known status, and params/versions/metrics as JSON objects."""
    status = table.column("status")
    bad_status = sorted(set(pc.unique(status).drop_null().to_pylist()) - set(STATUSES))
    if bad_status or status.null_count:
        shown = "null" if not bad_status else repr(str(bad_status[0])[:40])
        raise ResultsError(f"{path}: status {shown} is not one of {', '.join(STATUSES)}")
    for column, required in (("params", True), ("versions", False), ("metrics", False)):
        for value in pc.unique(table.column(column)).to_pylist():
            if value is None and not required:
                continue
            if not _json_object(value):
                raise ResultsError(f"{path}: {column} {str(value)[:40]!r} is not a JSON object")


JOIN_EVERY = 64  # files read are joined into one table this many at a time (load_results)


def load_results(paths: Iterable[Path | str], warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Any mix of files and folders of them, concatenated; the `source` column says which file.

    With `warn`, a bad file found inside a named folder is skipped with a warning naming it
    and why (one odd file must not cost the rest of the folder); a file named directly, and
    every file when `warn` is None (the gate's strict mode), is refused with ResultsError."""
    paths = list(paths)
    named = {Path(p) for p in paths}
    tables, pending, skipped, notes = [], [], [], []
    for f in _files(paths, notes):
        try:
            table = read_table(f)
        except ResultsError as exc:
            if warn is None or f in named:
                raise
            skipped.append(str(exc))
            continue
        pending.append(_plain(table.append_column("source", pa.array([str(f)] * table.num_rows, pa.string()))))
        if len(pending) == JOIN_EVERY:  # thousands of one-row tables held at once cost 400 MB more at 2,000 files
            batch = _join(pending)
            tables.extend([batch] if batch is not None else pending)
            pending = []
    tables.extend(pending)
    if not tables:  # one line: the error, with the first reason, not a warning per file before it
        raise ResultsError(f"no readable results files in {', '.join(map(str, paths))} (skipped {skipped[0]})")
    for reason in skipped:
        warn(f"skipped {reason}")  # type: ignore[misc]
    for note in notes if warn is not None else ():
        warn(note)
    # a process is counted once: a run read twice (named twice, a report's data/ copies, a baseline
    # folder holding its own baselines/) adds neither rows nor processes (bench.processes)
    return dedupe(_joined(tables), warn)
