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

    protocol = measure.Protocol(queued_bytes_bound=10 * 1000, min_sample_s=0.0, budget_s=60.0, min_samples=3, max_samples=3, plateau_patience=99)
    timing = measure.time_queued(call, barrier, enqueue, per_call_s=1e-6, output_bytes=1000, protocol=protocol)
    assert timing.sweep is not None
    assert timing.sweep.depth == 10 and timing.sweep.stop == "memory bound"  # the sweep wanted deeper; memory allowed ten
    assert timing.sweep.depths == [1, 2, 4, 8, 10]
    assert Output.peak <= 10 + 1


class DeviceModel:
    """A fake device: each call costs `per_call` on the clock, each barrier `barrier_cost`,
    so the true per-call time at queue depth k is per_call + barrier_cost / k."""

    def __init__(self, per_call: float, barrier_cost: float, dip: dict[int, float] | None = None) -> None:
        self.clock = FakeClock()
        self.per_call, self.barrier_cost = per_call, barrier_cost
        self.dip = dip or {}  # depth -> a per-call discount seen only at that depth
        self.in_batch = 0
        self.barriers = 0
        self.calls = 0

    def call(self) -> None:
        self.clock.t += self.per_call
        self.in_batch += 1
        self.calls += 1

    def barrier(self, out: object) -> None:
        self.clock.t += self.barrier_cost - self.dip.get(self.in_batch, 0.0) * self.in_batch
        self.in_batch = 0
        self.barriers += 1


def _queued(model: DeviceModel, **knobs: float) -> measure.Timing:
    p = measure.Protocol(min_sample_s=0.0, min_samples=3, max_samples=3, budget_s=1e9, **knobs)
    return measure.time_queued(model.call, model.barrier, lambda o: None, per_call_s=model.per_call, output_bytes=1, protocol=p,
                               clock=model.clock)


def test_queued_figure_is_the_plateau_of_the_depth_sweep_not_an_arbitrary_depth():
    model = DeviceModel(per_call=10e-6, barrier_cost=100e-6)
    t = _queued(model)
    sweep = t.sweep
    assert sweep is not None and sweep.stop == "plateau" and sweep.plateau_reached
    assert sweep.depths[:4] == [1, 2, 4, 8]
    assert sweep.per_call_s[0] == pytest.approx(110e-6) and sweep.per_call_s[1] == pytest.approx(60e-6)
    # the last two doublings each gained less than 3% on the best: that is the plateau
    assert sweep.per_call_s[-1] > sweep.per_call_s[-3] * 0.97
    assert t.summary.median == pytest.approx(sweep.per_call_s[-1])
    assert t.summary.median < 10e-6 * 1.02  # within 2% of the deep-queue limit
    assert t.inner_loops == sweep.depth == sweep.depths[-1]


def test_a_dip_at_a_shallow_depth_is_not_taken_as_the_queued_figure():
    model = DeviceModel(per_call=10e-6, barrier_cost=20e-6, dip={4: 5e-6})  # k=4 looks 5 µs faster than it is
    t = _queued(model)
    assert t.sweep is not None
    assert min(t.sweep.per_call_s) == pytest.approx(t.sweep.per_call_s[t.sweep.depths.index(4)])
    assert t.sweep.depth > 4
    assert t.summary.median == pytest.approx(10e-6 + 20e-6 / t.sweep.depth)


def test_sweep_stops_at_the_budget_and_says_so():
    model = DeviceModel(per_call=10e-6, barrier_cost=1.0)  # a deeper queue always helps
    p = measure.Protocol(min_sample_s=0.0, min_samples=3, max_samples=3, budget_s=2.0, sweep_budget_fraction=0.5)
    t = measure.time_queued(model.call, model.barrier, lambda o: None, 10e-6, 1, p, clock=model.clock)
    assert t.sweep is not None and t.sweep.stop == "budget" and not t.sweep.plateau_reached
    assert t.summary.n >= 3  # the final sampling still takes its minimum


def test_sample_length_is_set_by_repeating_batches_never_by_the_depth():
    model = DeviceModel(per_call=1e-6, barrier_cost=0.0)
    p = measure.Protocol(min_sample_s=1e-3, min_samples=3, max_samples=3, budget_s=1e9, plateau_min_batch_s=0.0)
    t = measure.time_queued(model.call, model.barrier, lambda o: None, 1e-6, 1, p, clock=model.clock)
    assert t.sweep is not None and t.sweep.depths == [1, 2, 4] and t.sweep.depth == 4  # flat: two doublings gain nothing
    assert 1000 <= t.inner_loops <= 1004  # ~250 batches of 4 make a 1 ms sample; each batch still has one barrier


def test_latency_barriers_every_call_and_queued_once_per_batch():
    model = DeviceModel(per_call=1e-6, barrier_cost=0.0)
    p = measure.Protocol(min_samples=4, max_samples=4, min_sample_s=0.0)
    measure.time_latency(model.call, model.barrier, per_call_s=1.0, protocol=p, clock=model.clock)
    assert model.calls == model.barriers == 4
    model.calls = model.barriers = 0
    t = measure.time_queued(model.call, model.barrier, lambda o: None, per_call_s=1.0, output_bytes=1, protocol=p, clock=model.clock)
    assert t.sweep is not None
    sweep_calls = sum(t.sweep.depths) * p.sweep_samples
    assert model.calls == sweep_calls + 4 * t.sweep.depth
    assert model.barriers == len(t.sweep.depths) * p.sweep_samples + 4


class FakeEvent:
    """torch.cuda.Event's shape: records the fake clock; elapsed_time in milliseconds."""

    def __init__(self, clock: FakeClock, log: list[str]) -> None:
        self.clock, self.log, self.at = clock, log, 0.0

    def record(self) -> None:
        self.log.append("record")
        self.at = self.clock.t

    def synchronize(self) -> None:
        self.log.append("sync")

    def elapsed_time(self, end: "FakeEvent") -> float:
        return (end.at - self.at) * 1e3


def test_device_time_is_the_span_between_events_around_one_call_after_the_filler():
    clock, log = FakeClock(), []

    def call() -> None:
        log.append("call")
        clock.t += 7e-6

    def busy(seconds: float) -> None:
        log.append("busy")
        assert seconds > 7e-6  # longer than the host needs to enqueue the call

    events = measure.DeviceEvents(lambda: FakeEvent(clock, log), "fake", busy=busy)
    p = measure.Protocol(min_samples=3, max_samples=3)
    t = measure.time_device(call, events, per_call_s=7e-6, protocol=p, clock=clock)
    assert t.kind == "device" and t.summary.median == pytest.approx(7e-6)
    assert log[:5] == ["busy", "record", "call", "record", "sync"]


def _timing(kind: str, samples: list[float]) -> measure.Timing:
    return measure.Timing(kind, samples, 1)


def test_dispatch_overhead_is_latency_minus_queued():
    value, note = measure.dispatch_overhead(_timing("latency", [3e-6] * 20), _timing("queued", [1e-6] * 20))
    assert value == pytest.approx(2e-6) and note == ""


def test_a_negative_dispatch_overhead_within_noise_reads_zero_with_a_note():
    lat = _timing("latency", [1.00e-3, 0.98e-3, 1.02e-3] * 10)
    que = _timing("queued", [1.01e-3, 0.99e-3, 1.03e-3] * 10)
    value, note = measure.dispatch_overhead(lat, que)
    assert value == 0.0 and "clamped to 0" in note


def test_queued_slower_than_latency_beyond_noise_is_null_with_the_reason():
    value, note = measure.dispatch_overhead(_timing("latency", [1e-3] * 20), _timing("queued", [2e-3] * 20))
    assert value is None and "slower than latency" in note


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


def test_no_plateau_is_declared_while_a_batch_is_shorter_than_the_minimum():
    model = DeviceModel(per_call=1e-6, barrier_cost=0.0)  # flat from k=1: a plateau at once, were batches long enough
    p = measure.Protocol(min_sample_s=0.0, min_samples=3, max_samples=3, budget_s=1e9, plateau_min_batch_s=1e-3)
    t = measure.time_queued(model.call, model.barrier, lambda o: None, 1e-6, 1, p, clock=model.clock)
    assert t.sweep is not None and t.sweep.stop == "plateau"
    assert t.sweep.depth == 1024  # the first depth whose batch lasts 1 ms


def test_by_default_a_small_op_is_queued_until_a_batch_lasts_10_ms():
    """A 20 us op flat from k=1 is not judged at k=4 (80 us batches, inside the host's
    transients): the default sweep goes on until a batch lasts 10 ms."""
    model = DeviceModel(per_call=20e-6, barrier_cost=0.0)
    p = measure.Protocol(min_sample_s=0.0, min_samples=3, max_samples=3, budget_s=1e9)
    t = measure.time_queued(model.call, model.barrier, lambda o: None, 20e-6, 1, p, clock=model.clock)
    assert t.sweep is not None and t.sweep.stop == "plateau"
    assert t.sweep.depth == 512  # 512 x 20 us = 10.2 ms, the first batch of at least 10 ms
