"""Run-time self-checks that make a wrong number impossible to publish, on any device.

Two checks, recorded in every row (`barrier_check`, `placement_check`):

* **Barrier validity**, once per worker and backend. The timed region is "call, then the
  framework's barrier"; a barrier that returns before the device has finished turns every
  timing into a dispatch time. The datasheet-peak bound (bench.roofline) only catches that
  when the result comes out faster than the hardware can go, which a small op never does.
  This check does not need a peak: it times a dependent chain of fp32 matmuls (`x = x @ w`,
  so no call can be skipped or overlapped with the next) at 1x and at `factor`x the work,
  once waiting through the adapter's barrier and once through a host read of the result
  (`to_numpy`, a data dependency no framework can return early from). Elapsed time must
  grow with the work: the growth seen through the barrier must be at least 30% of the
  growth seen through the host read (a real barrier sees all of it). A barrier that returns
  early sees only the dispatch of the extra calls, a small fraction of their work, so it
  fails on Metal, CUDA and CPU alike. The op is calibrated (its size doubled) until one
  step's work, measured through the host read, is `target_s`, so the work dwarfs per-call
  dispatch on any device. A failed verdict must repeat on three measurements of growing
  length before it is final (noise does not repeat, a broken barrier does); then every row
  of that backend is an `error` naming the check.

* **Placement**, per case: the output of the first call lives on the selected device
  (torch `out.device`, JAX `out.devices()`, TF `out.device` plus the run metadata of the
  graph, MLX's default device). A failure is an error; TensorFlow ops that ran on the host
  although a GPU was selected make the row "partial" (recorded in `metrics`, never ranked).

The adapter hooks are `Adapter.matmul`, `Adapter.placement` and
`Adapter.observing_placement` (bench.frameworks.base); the worker only calls this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from bench.frameworks.base import Adapter, Placement

Clock = Callable[[], float]


@dataclass(frozen=True)
class BarrierCheck:
    valid: bool | None  # None: could not be checked (the adapter has no matmul hook)
    summary: str
    cost_s: float = 0.0  # wall time the check took (its share of the suite is quoted in the README)


def _chain(adapter: Adapter, n: int) -> tuple[Any, Callable[[Any], Any]]:
    """A device-resident n×n fp32 matrix and one step of the chain. w = 1/n everywhere is
    idempotent (w·w = w), so the chain's values stay bounded at any length; a dense GEMM
    does the same work whatever the values, and building these costs no random numbers
    (8192² Gaussians took seconds on the host)."""
    block = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    x = adapter.asarray(np.tile(block, (max(n // 64, 1), max(n // 64, 1)))[:n, :n], "fp32")
    w = adapter.asarray(np.full((n, n), 1.0 / n, dtype=np.float32), "fp32")
    return x, lambda v: adapter.matmul(v, w)


def _elapsed(x: Any, step: Callable[[Any], Any], calls: int, wait: Callable[[Any], Any], clock: Clock) -> float:
    t0 = clock()
    y = x
    for _ in range(calls):
        y = step(y)
    wait(y)
    return clock() - t0


def _barrier_result(adapter: Adapter, verdict: bool | None, how: str, cost: float) -> BarrierCheck:
    """The check's verdict in words (inconclusive, valid or INVALID); apart from
    check_barrier so it reads as calibrate, then measure."""
    if verdict is None:
        return BarrierCheck(None, f"not checked: inconclusive, the host-read timings did not grow with the work: {how}", cost)
    if verdict:
        return BarrierCheck(True, f"valid: {how}", cost)
    return BarrierCheck(
        False,
        f"INVALID: {type(adapter).__name__}.barrier returns before the work is done on {adapter.backend} "
        f"(timings would measure dispatch): {how}",
        cost,
    )


def check_barrier(
    adapter: Adapter,
    *,
    target_s: float = 3e-3,
    factor: int = 4,
    min_share: float = 0.3,
    repeats: int = 3,
    max_n: int = 8192,
    clock: Clock = time.perf_counter,
) -> BarrierCheck:
    """See the module docstring. `target_s` is the host-read time of one step the op is
    grown to (so per-call dispatch, 5-100 µs on the backends we know, is a few percent of
    the work); `factor` the work multiple; `min_share` the least share of the added work a
    valid barrier must see (a real barrier sees ~100%, an early one the dispatch share);
    the minimum of `repeats` runs is used."""
    started = clock()

    def growth(x: Any, step: Callable[[Any], Any], wait: Callable[[Any], Any], r: int) -> tuple[float, float]:
        """(1-step time, time added by factor-1 more steps): minima over r alternating pairs,
        so a burst of load from a neighbour hits both sides alike."""
        ones, many = [], []
        for _ in range(r):
            ones.append(_elapsed(x, step, 1, wait, clock))
            many.append(_elapsed(x, step, factor, wait, clock))
        return min(ones), min(many) - min(ones)

    try:
        n = 64
        while True:  # calibrate: grow the op until one step's work (not its dispatch or copy) is target_s
            x, step = _chain(adapter, n)
            _elapsed(x, step, factor, adapter.to_numpy, clock)  # compile/JIT for this shape
            h1, host = growth(x, step, adapter.to_numpy, repeats)
            if host / (factor - 1) >= target_s or n >= max_n or h1 >= 50 * target_s:
                break
            n *= 2
        verdict: bool | None = None
        for attempt in range(4):  # a failed or unclear verdict is measured again, longer: noise does not repeat
            r = repeats * 2**attempt
            if attempt:
                h1, host = growth(x, step, adapter.to_numpy, r)
            through = growth(x, step, adapter.barrier, r)[1]
            verdict = None if host <= 0 else through >= min_share * host
            if verdict or (verdict is False and attempt >= 2):
                break
    except NotImplementedError as exc:
        return BarrierCheck(None, f"not checked: {exc}", clock() - started)
    cost = clock() - started
    how = (
        f"{factor}x the work added {through * 1e3:.3g} ms through the barrier vs "
        f"{host * 1e3:.3g} ms through a host read ({n}x{n} fp32 matmul chain; check took {cost:.2f} s)"
    )
    return _barrier_result(adapter, verdict, how, cost)


def barrier_once(adapter: Adapter) -> BarrierCheck:
    """The barrier check of this worker's adapter, run on first use and then remembered
    (an adapter is bound to one backend for its lifetime)."""
    check = getattr(adapter, "_metalbench_barrier_check", None)
    if check is None:
        check = check_barrier(adapter)
        adapter._metalbench_barrier_check = check  # type: ignore[attr-defined]
    return check


def recorded_summary(adapter: Adapter) -> str | None:
    """This worker's barrier verdict if the check has run (for rows that ended before timing)."""
    check = getattr(adapter, "_metalbench_barrier_check", None)
    return check.summary if check is not None else None


def check_placement(adapter: Adapter, out: Any) -> Placement:
    """The adapter's placement verdict for one case's output; never raises (a hook that
    fails is reported, not fatal)."""
    try:
        return adapter.placement(out)
    except Exception as exc:  # a broken hook must not cost the case its timing
        return Placement(None, f"placement hook failed: {type(exc).__name__}: {exc}")
