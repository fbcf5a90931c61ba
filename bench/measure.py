"""The timing protocol, written once for every framework.

An adapter hands over three callables: `call()` issues one operation and returns its
output without waiting, `barrier(out)` blocks until `out` (and everything queued before
it) has finished on the device, and `enqueue(out)` starts work that a lazy framework
would otherwise never do (MLX's `async_eval`; a no-op elsewhere). From those, two
figures are measured and never mixed:

* latency — one call then the barrier, per call: what a single synchronous request sees.
* queued — k calls back to back, one barrier, per call: the steady state of a model that
  queues work and waits once. Dispatch overhead = latency − queued.

The queue depth k is not a knob: a small op's per-call time falls as k grows (the host
runs ahead of the device and the barrier is amortised) until the pipe is full, and any
one k picked for timer resolution lands somewhere on that curve (up to 2x off on an
H200). So `time_queued` sweeps k = 1, 2, 4, ... until a deeper queue stops helping (the
plateau), bounded by the outputs-in-flight memory and the case budget, and times the
deepest level reached; the (k, per-call) curve is kept. How long one sample lasts is a
separate knob (repeats of the k-call batch), so timer resolution never moves k.

* device — where the framework exposes device events (torch CUDA/MPS), the kernel time
  between events recorded around one call, with the device kept busy while the host
  enqueues it; latency − device is the host's share.

Both sample adaptively: they stop when the 95% confidence interval of the median is
within ±`rel_precision`, or when the case's time budget runs out (then `converged` is
False and the row says so). The first call, which carries compilation and kernel JIT,
is timed apart and never enters the samples.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
import typing
from typing import Any, Callable

from bench.stats import Summary, summarize

Call = Callable[[], Any]
Barrier = Callable[[Any], None]
Enqueue = Callable[[Any], None]
Clock = Callable[[], float]

TIMING_KINDS = ("latency", "queued")  # device time is extra, where the adapter has events


@dataclass(frozen=True)
class Protocol:
    """Knobs of the timing protocol; defaults suit a laptop-sized quick suite."""

    rel_precision: float = 0.02  # target half-width of the median's 95% CI
    min_samples: int = 10
    max_samples: int = 500
    budget_s: float = 1.0  # per timing kind, per case
    warmup_s: float = 0.05
    min_warmup_calls: int = 3
    min_sample_s: float = 2e-3  # calibrate inner loops so one sample lasts at least this
    max_inner_loops: int = 10_000
    # Outputs a queued batch may have in flight. 256 MiB stopped torch's sdpa 64x8x64x128 (8 MB
    # out) at k=32 on an H200 with the curve still falling; 1 GiB lets it reach k=128.
    queued_bytes_bound: int = 2**30
    plateau_tolerance: float = 0.03  # a deeper queue must beat the best per-call time by this
    plateau_patience: int = 2  # consecutive doublings that do not, and the sweep ends
    # No plateau is declared while a batch is shorter than this. 1 ms let JAX's sdpa 64x8x64x128
    # stop at k=8-16 on an H200 (151 and 109 us a call) where a 128-deep queue in the same
    # process read 126 and 86 us; at 10 ms a barrier's fixed cost is under 1% of a batch.
    plateau_min_batch_s: float = 1e-2
    sweep_samples: int = 5  # samples per queue depth while sweeping
    sweep_budget_fraction: float = 0.5  # of budget_s; the final sampling gets the rest
    # Energy (bench.energy.window): a window of the row's own calls after the timing, the
    # idle floor just before it. False (--energy off) skips both: no counter is opened.
    energy: bool = True
    energy_idle_s: float = 0.5
    energy_window_s: float = 1.0


@dataclass(frozen=True)
class QueueSweep:
    """The queue-depth sweep behind a queued figure: median per-call seconds at each k."""

    depths: list[int]
    per_call_s: list[float]
    depth: int  # the k the queued figure was timed at
    stop: str  # why the sweep ended: plateau, memory bound, depth cap, budget

    @property
    def plateau_reached(self) -> bool:
        return self.stop == "plateau"


@dataclass
class Timing:
    kind: str
    samples_s: list[float]  # per-call seconds, one value per sample
    inner_loops: int  # calls per sample
    summary: Summary = field(init=False)
    converged: bool = False
    sweep: QueueSweep | None = None  # queued only

    def __post_init__(self) -> None:
        self.summary = summarize(self.samples_s)


FIGURE_REPEATS = 6
"""Repetitions of a multi-step figure (a prefill, a whole greedy generation), for the
suite's rows and the reference tools' alike: six is the fewest whose median has a bounded
95% interval (order statistics), and each repetition of a 128-token generation at a 0.5B
shape takes seconds, so no more are taken."""


@dataclass
class Repeated:
    """A fixed number of timed repetitions of a multi-step figure (a prefill, a whole greedy
    generation): too long to sample adaptively, so the count is set by the caller."""

    samples_s: list[float]
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.samples_s)


def repeat(fn: Call, barrier: Barrier, n: int, clock: Clock = time.perf_counter) -> Repeated:
    """`n` samples of fn() followed by barrier(out), each timed on its own with `clock`.

    For figures whose one call already holds many device round trips (greedy generation
    reads each token back), the barrier may be a no-op; it is still called, so a figure
    that ends in asynchronous work is never timed without its completion. The garbage
    collector is paused while timing, as in the adaptive sampling."""
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(n):
            t0 = clock()
            barrier(fn())
            samples.append(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Repeated(samples)


def time_first_call(call: Call, barrier: Barrier, clock: Clock = time.perf_counter) -> tuple[Any, float]:
    """The first call on fresh inputs: compile/trace/JIT plus one execution."""
    t0 = clock()
    out = call()
    barrier(out)
    return out, clock() - t0


def warm_up(call: Call, barrier: Barrier, protocol: Protocol, clock: Clock = time.perf_counter) -> float:
    """Run until both the warm-up time and call count are spent; return the per-call estimate."""
    calls, t_start = 0, clock()
    best = math.inf
    while calls < protocol.min_warmup_calls or clock() - t_start < protocol.warmup_s:
        t0 = clock()
        barrier(call())
        best = min(best, clock() - t0)
        calls += 1
    return best


def latency_loops(per_call_s: float, protocol: Protocol) -> int:
    return int(min(max(1, math.ceil(protocol.min_sample_s / max(per_call_s, 1e-9))), protocol.max_inner_loops))


def _sample_adaptively(
    take: Callable[[], float], protocol: Protocol, clock: Clock, budget_s: float | None = None
) -> tuple[list[float], bool]:
    samples: list[float] = []
    start = clock()
    budget = protocol.budget_s if budget_s is None else budget_s
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(samples) < protocol.max_samples:
            samples.append(take())
            if len(samples) >= protocol.min_samples:
                if summarize(samples).ci_half_width_rel <= protocol.rel_precision:
                    return samples, True
                if clock() - start >= budget:
                    return samples, False
        return samples, False
    finally:
        if gc_was_enabled:
            gc.enable()


def time_latency(
    call: Call, barrier: Barrier, per_call_s: float, protocol: Protocol, clock: Clock = time.perf_counter
) -> Timing:
    loops = latency_loops(per_call_s, protocol)
    samples, converged = _sample_adaptively(_latency_sampler(call, barrier, loops, clock), protocol, clock)
    return Timing("latency", samples, loops, converged=converged)


def _latency_sampler(call: Call, barrier: Barrier, loops: int, clock: Clock) -> Callable[[], float]:
    """One latency sample: `loops` calls, each followed by the barrier."""

    def take() -> float:
        t0 = clock()
        for _ in range(loops):
            barrier(call())
        return (clock() - t0) / loops

    return take


def depth_cap(output_bytes: int, protocol: Protocol) -> int:
    """The deepest queue allowed: every queued output may be alive until the barrier."""
    by_memory = max(1, protocol.queued_bytes_bound // max(output_bytes, 1))
    return int(max(1, min(by_memory, protocol.max_inner_loops)))


def _batch_sampler(
    call: Call, barrier: Barrier, enqueue: Enqueue, depth: int, repeats: int, clock: Clock
) -> Callable[[], float]:
    """One sample: `repeats` batches of `depth` calls, each batch closed by one barrier."""

    def take() -> float:
        t0 = clock()
        for _ in range(repeats):
            out = None
            for _ in range(depth):
                # Release the previous output before the next call, as latency mode does: holding it
                # makes a CPU allocator alternate two fresh buffers (page faults on every call, 60x
                # slower for torch's 16 MB stream case). Queued work stays alive in the framework.
                out = None
                out = call()
                enqueue(out)
            barrier(out)
            out = None
        return (clock() - t0) / (repeats * depth)

    return take


def _repeats(per_call_s: float, depth: int, protocol: Protocol) -> int:
    """Batches per sample so a sample lasts `min_sample_s` (timer resolution), never the depth."""
    wanted = math.ceil(protocol.min_sample_s / max(per_call_s * depth, 1e-9))
    return int(max(1, min(wanted, protocol.max_inner_loops // depth)))


def sweep_queue(
    call: Call,
    barrier: Barrier,
    enqueue: Enqueue,
    per_call_s: float,
    output_bytes: int,
    protocol: Protocol,
    clock: Clock = time.perf_counter,
) -> QueueSweep:
    """Per-call time at k = 1, 2, 4, ... until `plateau_patience` doublings in a row fail to
    beat the best so far by `plateau_tolerance` (the plateau), or a bound ends it. A batch
    shorter than `plateau_min_batch_s` is never a plateau: on an H200, MLX's matmul
    16x4096x4096 read 92, 88, 86, 87 us at k = 1..8 (flat for two doublings) and 26 us at
    k = 256 in the next process; short batches sit inside the GPU's and host's transients.

    The figure is then timed at the deepest level reached, not at the curve's minimum: a
    dip at shallow k (a partly hidden barrier, one lucky level of five samples) is not the
    steady state of a long queue, and the deepest level is what a deep-queue measurement
    made any other way would see.
    """
    from statistics import median

    cap = depth_cap(output_bytes, protocol)
    budget = protocol.budget_s * protocol.sweep_budget_fraction
    depths: list[int] = []
    medians: list[float] = []
    best, stalled, depth, start = math.inf, 0, 1, clock()
    while True:
        take = _batch_sampler(call, barrier, enqueue, depth, _repeats(per_call_s, depth, protocol), clock)
        level = median(take() for _ in range(max(1, protocol.sweep_samples)))
        depths.append(depth)
        medians.append(level)
        if level < best * (1.0 - protocol.plateau_tolerance):
            best, stalled = level, 0
        else:
            stalled += 1
        if stalled >= protocol.plateau_patience and level * depth >= protocol.plateau_min_batch_s:
            stop = "plateau"
            break
        if depth >= cap:
            stop = "memory bound" if cap < protocol.max_inner_loops else "depth cap"
            break
        if clock() - start >= budget:
            stop = "budget"
            break
        depth = min(2 * depth, cap)
    return QueueSweep(depths, medians, depths[-1], stop)


def time_queued(
    call: Call,
    barrier: Barrier,
    enqueue: Enqueue,
    per_call_s: float,
    output_bytes: int,
    protocol: Protocol,
    clock: Clock = time.perf_counter,
) -> Timing:
    """Sweep the queue depth to its plateau, then sample adaptively at that depth."""
    start = clock()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        sweep = sweep_queue(call, barrier, enqueue, per_call_s, output_bytes, protocol, clock)
    finally:
        if gc_was_enabled:
            gc.enable()
    depth = sweep.depth
    repeats = _repeats(per_call_s, depth, protocol)
    take = _batch_sampler(call, barrier, enqueue, depth, repeats, clock)
    remaining = max(protocol.budget_s - (clock() - start), 0.0)
    samples, converged = _sample_adaptively(take, protocol, clock, budget_s=remaining)
    return Timing("queued", samples, repeats * depth, converged=converged, sweep=sweep)


# -- device time ------------------------------------------------------------------------
class TimingEvent(typing.Protocol):
    """What torch.cuda.Event and torch.mps.Event share (elapsed_time in milliseconds)."""

    def record(self) -> None: ...
    def synchronize(self) -> None: ...
    def elapsed_time(self, end: Any) -> float: ...


@dataclass(frozen=True)
class DeviceEvents:
    """What an adapter offers for device timing (see Adapter.device_events).

    `new_event()` returns a timing event (record/synchronize/elapsed_time in ms, the
    interface torch.cuda.Event and torch.mps.Event share). `busy(seconds)`, where given,
    queues device work that lasts about that long and touches no memory (torch.cuda._sleep),
    so the start event is reached only after the host has enqueued the call: the events
    then bracket the kernel, not the host's launch gap (triton's do_bench gets the same
    from its cache flush). Without it the figure can include that gap, and `source` says so.
    """

    new_event: Callable[[], TimingEvent]
    source: str
    busy: Callable[[float], None] | None = None


def time_device(
    call: Call, events: DeviceEvents, per_call_s: float, protocol: Protocol, clock: Clock = time.perf_counter
) -> Timing:
    """Device seconds between events recorded around one call, one call per sample."""
    start, end = events.new_event(), events.new_event()
    busy_s = min(2 * per_call_s + 100e-6, 5e-3)  # well past what the host needs to enqueue record, call, record

    def take() -> float:
        if events.busy is not None:
            events.busy(busy_s)
        start.record()
        out = call()
        end.record()
        end.synchronize()
        del out
        return start.elapsed_time(end) / 1e3

    samples, converged = _sample_adaptively(take, protocol, clock)
    return Timing("device", samples, 1, converged=converged)


def dispatch_overhead(latency: Timing, queued: Timing) -> tuple[float | None, str]:
    """latency − queued, per call, with the reason when it is not a plain difference.

    A small negative difference is noise (the two medians' intervals overlap), and reads
    as 0 with a note; a difference beyond both intervals means queueing made calls slower
    (memory pressure, contention), which is a finding, not an overhead: null with the reason.
    """
    lat, que = latency.summary, queued.summary
    diff = lat.median - que.median
    if diff >= 0:
        return diff, ""
    noise = (lat.ci_high - lat.ci_low) / 2 + (que.ci_high - que.ci_low) / 2
    if math.isfinite(noise) and -diff <= noise:
        return 0.0, f"latency - queued = {diff * 1e6:.3g} us, within the medians' intervals (+-{noise * 1e6:.3g} us): clamped to 0"
    return None, f"queued per call is {-diff * 1e6:.3g} us slower than latency, beyond the medians' intervals: no dispatch overhead"



@dataclass(frozen=True)
class TimingField:
    """One column a Timing becomes in a row: `<prefix><suffix>`, its Python type (the
    results schema maps it to an arrow type) and how to read it off the Timing."""

    suffix: str
    type: type
    value: Callable[[Timing], Any]


# The one table of timing columns. The results schema (bench.results, which re-exports it)
# is built from it and the worker writes a Timing's columns with it; it lives here, beside
# Timing, because the worker never imports bench.results (tests/test_layering.py).
TIMING_FIELDS: tuple[TimingField, ...] = (
    TimingField("median_s", float, lambda t: t.summary.median),
    TimingField("mean_s", float, lambda t: t.summary.mean),
    TimingField("stdev_s", float, lambda t: t.summary.stdev),
    TimingField("min_s", float, lambda t: t.summary.minimum),
    TimingField("ci_low_s", float, lambda t: t.summary.ci_low),
    TimingField("ci_high_s", float, lambda t: t.summary.ci_high),
    TimingField("n_samples", int, lambda t: t.summary.n),
    TimingField("inner_loops", int, lambda t: t.inner_loops),
    TimingField("samples_s", list, lambda t: list(t.samples_s)),
    TimingField("converged", bool, lambda t: t.converged),
)


def timing_columns(prefix: str, timing: Timing | None) -> dict[str, Any]:
    """A Timing as row columns (`latency_median_s`, ...); nothing for a timing not taken."""
    if timing is None:
        return {}
    return {f"{prefix}{f.suffix}": f.value(timing) for f in TIMING_FIELDS}


def replay(timing: Timing, call: Call, barrier: Barrier, enqueue: Enqueue,
           clock: Clock = time.perf_counter) -> tuple[Callable[[], float], int]:
    """More samples of exactly what `timing` measured (its kind, queue depth and calls per
    sample), and the calls one sample makes: the energy window (bench.energy.window) runs
    the row's own calls this way, so its joules belong to the figure the row reports."""
    if timing.kind == "queued" and timing.sweep is not None:
        depth = timing.sweep.depth
        repeats = max(1, timing.inner_loops // depth)
        return _batch_sampler(call, barrier, enqueue, depth, repeats, clock), repeats * depth
    return _latency_sampler(call, barrier, timing.inner_loops, clock), timing.inner_loops
