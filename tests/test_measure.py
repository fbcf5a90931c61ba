"""The timing protocol, with fake operations (no framework, no real timing asserted)."""

from __future__ import annotations

import weakref

import pytest

from bench import measure


class Output:
    """Stands in for a device array; counts how many are alive at once."""

    alive: "weakref.WeakSet[Output]" = weakref.WeakSet()
    peak = 0

    def __init__(self) -> None:
        Output.alive.add(self)
        Output.peak = max(Output.peak, len(Output.alive))


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_queued_mode_never_holds_more_outputs_than_its_memory_bound():
    Output.alive = weakref.WeakSet()
    Output.peak = 0
    pending: list[Output] = []  # a lazy framework keeps queued outputs until the barrier

    def call() -> Output:
        return Output()

    def enqueue(out: Output) -> None:
        pending.append(out)

    def barrier(out: Output) -> None:
        pending.clear()

    protocol = measure.Protocol(queued_bytes_bound=10 * 1000, min_sample_s=1.0, budget_s=0.0, min_samples=3)
    timing = measure.time_queued(call, barrier, enqueue, per_call_s=1e-6, output_bytes=1000, protocol=protocol)
    assert timing.inner_loops == 10  # time wanted a million calls; memory allowed ten
    assert Output.peak <= 10 + 1


def test_queue_depth_calibrates_to_sample_time_and_is_at_least_two():
    p = measure.Protocol(min_sample_s=1e-3)
    assert measure.queue_depth(1e-5, 8, p) == 100
    assert measure.queue_depth(1.0, 8, p) == 2
    assert measure.queue_depth(1e-5, p.queued_bytes_bound, p) == 1


def test_latency_barriers_every_call_and_queued_only_once_per_sample():
    calls = {"call": 0, "barrier": 0}

    def call():
        calls["call"] += 1
        return object()

    def barrier(out):
        calls["barrier"] += 1

    p = measure.Protocol(min_samples=4, max_samples=4, min_sample_s=0.0)
    measure.time_latency(call, barrier, per_call_s=1.0, protocol=p)
    assert calls == {"call": 4, "barrier": 4}
    calls.update(call=0, barrier=0)
    t = measure.time_queued(call, barrier, lambda o: None, per_call_s=1.0, output_bytes=1, protocol=p)
    assert calls == {"call": 4 * t.inner_loops, "barrier": 4}


def test_sampling_stops_when_the_interval_is_tight():
    clock = FakeClock()

    def call():
        clock.t += 0.001
        return None

    p = measure.Protocol(min_samples=10, max_samples=500, budget_s=100.0, min_sample_s=0.0)
    t = measure.time_latency(call, lambda o: None, per_call_s=0.001, protocol=p, clock=clock)
    assert t.converged and t.summary.n == 10
    assert t.summary.median == pytest.approx(0.001)


def test_sampling_stops_at_the_budget_when_noise_never_settles():
    clock = FakeClock()
    step = iter([0.001, 0.003] * 1000)

    def call():
        clock.t += next(step)
        return None

    p = measure.Protocol(min_samples=10, max_samples=500, budget_s=0.05, min_sample_s=0.0, rel_precision=0.01)
    t = measure.time_latency(call, lambda o: None, per_call_s=0.002, protocol=p, clock=clock)
    assert not t.converged and t.summary.n < 500


def test_first_call_is_timed_apart():
    clock = FakeClock()

    def call():
        clock.t += 5.0
        return "out"

    out, seconds = measure.time_first_call(call, lambda o: None, clock=clock)
    assert out == "out" and seconds == 5.0
