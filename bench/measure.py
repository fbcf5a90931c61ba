"""The timing protocol, written once for every framework.

An adapter hands over three callables: `call()` issues one operation and returns its
output without waiting, `barrier(out)` blocks until `out` (and everything queued before
it) has finished on the device, and `enqueue(out)` starts work that a lazy framework
would otherwise never do (MLX's `async_eval`; a no-op elsewhere). From those, two
figures are measured and never mixed:

* latency — one call then the barrier, per call: what a single synchronous request sees.
* queued — k calls back to back, one barrier, per call: the steady state of a model that
  queues work and waits once. Dispatch overhead = latency − queued.

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
from typing import Any, Callable

from bench.stats import Summary, summarize

Call = Callable[[], Any]
Barrier = Callable[[Any], None]
Enqueue = Callable[[Any], None]
Clock = Callable[[], float]

TIMING_KINDS = ("latency", "queued")


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
    queued_bytes_bound: int = 256 * 2**20  # outputs a queued sample may have in flight


@dataclass
class Timing:
    kind: str
    samples_s: list[float]  # per-call seconds, one value per sample
    inner_loops: int  # calls per sample
    summary: Summary = field(init=False)
    converged: bool = False

    def __post_init__(self) -> None:
        self.summary = summarize(self.samples_s)


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


def queue_depth(per_call_s: float, output_bytes: int, protocol: Protocol) -> int:
    """How many calls a queued sample issues before its one barrier.

    Enough to last `min_sample_s` (so the barrier and timer are amortised), at least 2
    (one call is not a queue), and never more than the memory bound allows, since the
    outputs of queued calls may all be alive until the barrier returns.
    """
    wanted = math.ceil(protocol.min_sample_s / max(per_call_s, 1e-9))
    by_memory = max(1, protocol.queued_bytes_bound // max(output_bytes, 1))
    return int(max(1, min(max(wanted, 2), by_memory, protocol.max_inner_loops)))


def latency_loops(per_call_s: float, protocol: Protocol) -> int:
    return int(min(max(1, math.ceil(protocol.min_sample_s / max(per_call_s, 1e-9))), protocol.max_inner_loops))


def _sample_adaptively(take: Callable[[], float], protocol: Protocol, clock: Clock) -> tuple[list[float], bool]:
    samples: list[float] = []
    start = clock()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(samples) < protocol.max_samples:
            samples.append(take())
            if len(samples) >= protocol.min_samples:
                if summarize(samples).ci_half_width_rel <= protocol.rel_precision:
                    return samples, True
                if clock() - start >= protocol.budget_s:
                    return samples, False
        return samples, False
    finally:
        if gc_was_enabled:
            gc.enable()


def time_latency(
    call: Call, barrier: Barrier, per_call_s: float, protocol: Protocol, clock: Clock = time.perf_counter
) -> Timing:
    loops = latency_loops(per_call_s, protocol)

    def take() -> float:
        t0 = clock()
        for _ in range(loops):
            barrier(call())
        return (clock() - t0) / loops

    samples, converged = _sample_adaptively(take, protocol, clock)
    return Timing("latency", samples, loops, converged=converged)


def time_queued(
    call: Call,
    barrier: Barrier,
    enqueue: Enqueue,
    per_call_s: float,
    output_bytes: int,
    protocol: Protocol,
    clock: Clock = time.perf_counter,
) -> Timing:
    k = queue_depth(per_call_s, output_bytes, protocol)

    def take() -> float:
        t0 = clock()
        out = None
        for _ in range(k):
            # Release the previous output before the next call, as latency mode does: holding it
            # makes a CPU allocator alternate two fresh buffers (page faults on every call, 60x
            # slower for torch's 16 MB stream case). Queued work stays alive in the framework.
            out = None
            out = call()
            enqueue(out)
        barrier(out)
        return (clock() - t0) / k

    samples, converged = _sample_adaptively(take, protocol, clock)
    return Timing("queued", samples, k, converged=converged)
