"""Inside a worker process: one framework, one case at a time, rows back over a pipe.

Started by the runner as `python -m bench.worker --adapter MODULE:CLASS ...`, possibly
with another interpreter (one virtual environment per framework). Protocol: JSON lines.
The runner writes one case per line on stdin; the worker answers with one message per
line on a private copy of the original stdout, and points fd 1 at stderr so nothing a
framework prints can corrupt the protocol. Until its hello, a heartbeat thread sends a
`starting` message every second with the CPU time the process has used, so the runner can
tell a slow start from a hung one (bench.runner.WorkerProcess.await_hello). The worker never
writes results; the only files it writes are caches in the run's own folder that the runner
made for it (JAX's compilation cache, bench.case_cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.channel import Channel, open_channel

# Started by the runner, the worker opens its protocol pipe and starts the start heartbeat
# before the imports below (seconds of CPU on a busy machine: bench.channel says why).
CHANNEL: Channel | None = open_channel() if __name__ == "__main__" else None

import numpy as np  # noqa: E402

from bench import case_cache, conditions, measure, selfcheck  # noqa: E402
from bench.phases import Phases  # noqa: E402
from bench.energy import Meter, open_meter  # noqa: E402
from bench.energy import window as energy_window  # noqa: E402
from bench.frameworks.base import Adapter, BackendUnavailable, Skipped, Unsupported  # noqa: E402
from bench.memory import peak_rss_bytes, reset_peak_rss  # noqa: E402
from bench.plan import CaseMessage, case_seed  # noqa: E402
from bench.precision import FORMATS, compare, stored_inputs  # noqa: E402
from workloads import WORKLOADS, parallel, params_key  # noqa: E402


def _bound_cpus() -> str | None:
    """The CPUs this worker is bound to, read back from the OS (not echoed from the option),
    when the runner bound it (--cpus); null when the OS schedules it freely."""
    if not os.environ.get("METALBENCH_CPUS") or not hasattr(os, "sched_getaffinity"):
        return None
    return ",".join(map(str, sorted(os.sched_getaffinity(0))))


def _sweep_columns(queued: measure.Timing | None) -> dict[str, Any]:
    """The queue-depth curve behind the queued figure (bench.measure.sweep_queue)."""
    if queued is None or queued.sweep is None:
        return {}
    sweep = queued.sweep
    return {
        "queue_depth": sweep.depth,
        "queue_curve_k": list(sweep.depths),
        "queue_curve_s": list(sweep.per_call_s),
        "queue_plateau": sweep.plateau_reached,
        "queue_stop": sweep.stop,
    }


def _device_time(adapter: Adapter, call: Any, per_call: float, protocol: measure.Protocol) -> dict[str, Any]:
    """Device time between the framework's events where it has them; else the reason it is null."""
    try:
        events = adapter.device_events()
    except Unsupported as exc:
        return {"device_time_note": str(exc)}
    timing = measure.time_device(call, events, per_call, protocol)
    return {**measure.timing_columns("device_", timing), "device_time_source": events.source}


def _check(adapter: Adapter, case: CaseMessage, prepared: Any, out: Any, inputs: dict[str, np.ndarray],
           reference: Any, extras: dict[str, np.ndarray], placement: Any, row: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Compare the first call's output with the float64 reference, apart from the timing so
    run_case reads as check-then-time: fills the row's error columns and reason, and returns
    the metrics so far and the output's size in bytes (the queued timing needs it)."""
    workload = WORKLOADS[case.workload]
    params, dtype = case.params, case.dtype
    full = adapter.to_numpy(prepared.checked(out))
    checked = full[workload.check_index(params)]
    report = compare(checked, reference, dtype, workload.tolerance[dtype], workload.precision_witness)
    metrics: dict[str, Any] = dict(prepared.metrics()) if prepared.metrics else {}
    if placement.host_ops:
        metrics["ops_on_host_cpu"] = dict(placement.host_ops)
    problems = workload.assess(checked, inputs, params, dtype, metrics, extras) if workload.assess else []
    row.update(
        max_rel_error=report.max_rel_error,
        rel_rms_error=report.rel_rms_error,
        tolerance=workload.tolerance[dtype],
        effective_precision=report.effective_precision,
        precision_matches=report.precision_matches,
        correct=report.correct and not problems,
    )
    if not row["correct"]:
        if not report.within_tolerance:
            problems.append(f"max_rel_error {report.max_rel_error:.2e} > tolerance {workload.tolerance[dtype]:.0e}")
        if report.precision_matches is False:
            problems.append(f"{dtype} row measured {report.effective_precision}")
        row["reason"] = "; ".join(problems)
    return metrics, full.size * FORMATS[dtype].itemsize


def _time(adapter: Adapter, case: CaseMessage, prepared: Any, output_bytes: int, row: dict[str, Any]) -> measure.Timing:
    """Time a checked case in the kinds asked for, apart from the check so run_case reads as
    check-then-time: fills the row's timing columns and returns the primary timing."""
    timings, protocol = case.timings, case.protocol
    cap = WORKLOADS[case.workload].timing_budget_s
    if cap is not None and protocol.budget_s > cap:
        protocol = dataclasses.replace(protocol, budget_s=cap)
    per_call = measure.warm_up(prepared.call, adapter.barrier, protocol)
    latency = queued = None
    if "latency" in timings:
        latency = measure.time_latency(prepared.call, adapter.barrier, per_call, protocol)
    if "queued" in timings:
        queued = measure.time_queued(prepared.call, adapter.barrier, adapter.enqueue, per_call, output_bytes, protocol)
    row.update(measure.timing_columns("latency_", latency))
    row.update(measure.timing_columns("queued_", queued))
    row.update(_sweep_columns(queued))
    row.update(_device_time(adapter, prepared.call, per_call, protocol))
    primary = queued or latency
    assert primary is not None
    row["timing"] = primary.kind
    row.update(measure.timing_columns("", primary))
    if latency and queued:
        row["dispatch_overhead_s"], note = measure.dispatch_overhead(latency, queued)
        row["dispatch_overhead_note"] = note or None
    return primary


_METERS: dict[str, Meter | str] = {}  # backend -> its energy sources, opened once per worker


def _energy(adapter: Adapter, case: CaseMessage, prepared: Any, primary: measure.Timing, flops: float,
            rates: dict[str, float]) -> dict[str, Any]:
    """The row's energy columns (bench.energy.window), after its timing and apart from it:
    a source missing or failing nulls these columns with the reason and never the row;
    `--energy off` opens no counter and runs no window."""
    protocol = case.protocol
    if not protocol.energy:
        return {"energy_note": "energy measurement off (--energy off)"}
    if adapter.backend not in _METERS:
        _METERS[adapter.backend] = open_meter(adapter.backend)
    take, calls = measure.replay(primary, prepared.call, adapter.barrier, adapter.enqueue)
    return energy_window.measure_case(_METERS[adapter.backend], take, calls, protocol.energy_idle_s,
                                      protocol.energy_window_s, primary.summary.median, flops, rates)


_LAST_CASE: dict[str, Any] = {}  # the last case's inputs, float64 reference and extras, kept for its other modes


def _inputs_and_reference(case: CaseMessage) -> tuple[dict[str, np.ndarray], Any, dict[str, np.ndarray]]:
    """The case's inputs (seeded: the same in every framework), float64 reference and the
    workload's reference extras (empty without them).
    The modes of one case follow each other in a worker (bench.plan), so the last case's
    are kept and reused: one model build and one reference per case, not per mode (at
    Qwen2.5-0.5B's shape each costs seconds of CPU). Only one case is ever held. Where the
    runner names a bench.case_cache entry (a costly case several workers run), the first
    worker stores what it built there and the others load it: one build per case per run.
    (The runner owns that folder, as it owns the JAX compilation cache beside it.)"""
    workload = WORKLOADS[case.workload]
    key = (case.workload, params_key(case.params), case.dtype)
    if _LAST_CASE.get("key") != key:
        _LAST_CASE.clear()  # drop the old arrays before building the new ones
        entry = Path(case.inputs_cache) if case.inputs_cache else None
        stored = case_cache.load(entry) if entry is not None else None  # another worker of this run built them
        if stored is not None:
            inputs, reference, extras = stored
            print(f"{case.workload}: inputs and reference loaded from the run's case cache ({entry.name})", file=sys.stderr)
        else:
            rng = np.random.default_rng(case_seed(workload.name, case.params, case.dtype))
            inputs = stored_inputs(workload.make_inputs(case.params, rng), case.dtype)
            wide = parallel.map_values(lambda v: v.astype(np.float64), inputs)
            reference = workload.reference(wide, case.params)
            extras = dict(workload.reference_extras(wide, case.params)) if workload.reference_extras else {}
            del wide
            if entry is not None:
                case_cache.store(entry, inputs, reference, extras)
        _LAST_CASE.update(key=key, inputs=inputs, reference=reference, extras=extras)
    return _LAST_CASE["inputs"], _LAST_CASE["reference"], _LAST_CASE["extras"]


def run_case(adapter: Adapter, case: CaseMessage) -> dict[str, Any]:
    """Check then time one case; returns the worker's part of the row. Its steps' wall
    seconds go to the row's metrics (`phase_s`) and, refused or not, to the log."""
    phases = Phases()
    try:
        return _run_case(adapter, case, phases)
    finally:
        mode = f" {case.mode}" if len(WORKLOADS[case.workload].modes) > 1 else ""
        print(f"{case.workload} {case.dtype}{mode} {params_key(case.params)}: {phases.line()}", file=sys.stderr, flush=True)


def _run_case(adapter: Adapter, case: CaseMessage, phases: Phases) -> dict[str, Any]:
    workload = WORKLOADS[case.workload]
    params, dtype = case.params, case.dtype
    row: dict[str, Any] = {"status": "ok", "reason": "", "cache_state": "warm", "threads": adapter.threads(), "cpus": _bound_cpus()}
    with phases("barrier check"):
        barrier = selfcheck.barrier_once(adapter)  # once per worker and backend (bench.selfcheck)
    row["barrier_check"] = barrier.summary
    if barrier.valid is False:
        return {**row, "status": "error", "reason": f"barrier check failed: {barrier.summary}"}

    if dtype == "tf32" and (why := adapter.tf32_unsupported_reason()):
        raise Unsupported(why)
    row["math_mode"] = adapter.set_math_mode(dtype)
    adapter.mode, adapter.suite = case.mode, case.suite
    if len(workload.modes) > 1:  # the skips are about setting up a whole step, not one op
        with phases("budget check"):
            adapter.check_suite_budget()
            adapter.check_case_budget(workload.name, params, dtype)

    with phases("inputs"):
        inputs, reference, extras = _inputs_and_reference(case)

    adapter.release()
    adapter.reset_peak_memory()
    row["rss_scope"] = reset_peak_rss()
    with adapter.observing_placement():
        with phases("prepare"):
            prepared = adapter.prepare(workload.name, params, dtype, inputs)
        row["implementation"] = prepared.implementation
        if prepared.mode != case.mode:  # an adapter that ignored the mode would label eager timings compiled
            raise RuntimeError(f"the {case.mode} case was built as {prepared.mode} ({prepared.implementation})")
        with phases("first call"):
            out, row["first_call_s"] = measure.time_first_call(prepared.call, adapter.barrier)
    placement = selfcheck.check_placement(adapter, out)
    row["placement_check"] = placement.summary
    if placement.ok is False:
        return {**row, "status": "error", "reason": f"placement check failed: {placement.where}"}
    with phases("check"):
        metrics, output_bytes = _check(adapter, case, prepared, out, inputs, reference, extras, placement, row)
    del out

    before = conditions.snapshot(adapter.backend)
    with phases("timing"):
        primary = _time(adapter, case, prepared, output_bytes, row)

    flops = workload.flops(params)
    moved = workload.bytes_moved(params, FORMATS[dtype].itemsize)
    median = primary.summary.median
    row.update(flops=flops, bytes_moved=moved, tflops=flops / median / 1e12, gbps=moved / median / 1e9)
    rates = dict(workload.rates(params, FORMATS[dtype].itemsize)) if workload.rates else {}
    metrics.update({name: work / median for name, work in rates.items()})
    with phases("energy"):
        row.update(_energy(adapter, case, prepared, primary, flops, rates))
    metrics["phase_s"] = phases.rounded()
    row["metrics"] = metrics
    row.update(conditions.columns(before, conditions.snapshot(adapter.backend)))

    peak = adapter.peak_memory()
    row.update(peak_device_bytes=peak.device_bytes, peak_device_note=peak.note, peak_rss_bytes=peak_rss_bytes())
    del prepared
    adapter.release()
    return row


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def serve(adapter_path: str, framework: str, device: str, threads: int | None, channel: Channel) -> int:
    send = channel.send

    module_name, _, class_name = adapter_path.partition(":")
    try:
        adapter_cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        send({"type": "hello", "ok": False, "status": "skipped", "reason": f"{framework} is not installed ({_describe(exc)})"})
        return 0
    except Exception as exc:  # installed but broken: a tensorflow-metal/TF mismatch raises NotFoundError while importing
        traceback.print_exc()
        send({"type": "hello", "ok": False, "status": "error", "reason": f"{framework} failed to import: {_describe(exc)}"})
        return 0
    try:
        adapter = adapter_cls(device=device, threads=threads)
        hello = {
            "type": "hello",
            "ok": True,
            "backend": adapter.backend,
            "device_name": adapter.device_name(),
            "versions": adapter.versions(),
            "threads": adapter.threads(),
            "compile_cache": adapter.compile_cache(),
        }
    except BackendUnavailable as exc:
        send({"type": "hello", "ok": False, "status": "error", "reason": str(exc)})
        return 0
    except Exception as exc:  # a framework that fails to initialise costs its cases, not the run
        traceback.print_exc()
        send({"type": "hello", "ok": False, "status": "error", "reason": f"{framework} failed to start: {_describe(exc)}"})
        return 0
    send(hello)

    for line in sys.stdin:
        message = json.loads(line)
        if message.get("op") == "exit":
            break
        try:
            row = run_case(adapter, CaseMessage.from_json(message))
        except Unsupported as exc:
            row = {"status": "unsupported", "reason": str(exc)}
        except Skipped as exc:
            row = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:
            traceback.print_exc()
            why = adapter.unsupported_reason(exc)
            row = {"status": "unsupported", "reason": why} if why else {"status": "error", "reason": _describe(exc)}
            try:
                adapter.release()
            except Exception:
                pass
        row.setdefault("barrier_check", selfcheck.recorded_summary(adapter))  # unsupported/error rows too
        send({"type": "row", "row": row})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker", description="metalbench worker (started by the runner)")
    ap.add_argument("--adapter", required=True, help="MODULE:CLASS of the framework adapter")
    ap.add_argument("--framework", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    channel = CHANNEL or open_channel()
    started = time.perf_counter()
    try:
        return serve(args.adapter, args.framework, args.device, args.threads, channel)
    finally:
        print(f"worker {args.framework} exiting after {time.perf_counter() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
