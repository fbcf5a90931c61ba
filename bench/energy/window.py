"""The energy protocol: idle power just before, then a window of the row's own calls.

The timing's samples are never touched: energy counters are read in a window of their
own, right after the timing, running the same calls at the same queue depth and repeats
(`bench.measure.replay`). Two reasons. A counter has a resolution (NVML's energy counter
advances in steps of tens of ms; IOReport reports whole mJ), so the window lasts at least
`energy_window_s` whatever the timing's convergence took; and reading counters between
timed samples would put the reads' own cost into the times. The window's own per-call
time is recorded (`energy_window_per_call_s`) so a reader can see it ran at the timed
speed.

Idle power is the scope's mean power over `energy_idle_s` with nothing queued, measured
just before the window: the floor that "power during work" is judged against. A window
whose mean power is not above that floor, or is above the device's stated limit, is
flagged (`energy_valid` False) and never used for efficiency rankings: a counter that
did not advance, or one that read another device, must not become a "most efficient"
verdict (OpenJarvis#904: a modelled "measurement" gave a sleep and a generation the same
joules).
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bench.energy import Meter
from bench.energy.base import describe

Clock = Callable[[], float]


@dataclass(frozen=True)
class EnergyWindow:
    """What one idle phase and one work window read: seconds, calls, joules per rail."""

    idle_s: float
    idle_rails: dict[str, float]
    work_s: float
    calls: int
    rails: dict[str, float]


def measure_window(meter: Meter, take: Callable[[], Any], calls_per_sample: int, idle_s: float, window_s: float,
                   clock: Clock = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> EnergyWindow:
    """Idle for `idle_s`, then run `take()` (one sample of the row's calls, ending in the
    framework's barrier) until `window_s` has passed, each phase bracketed by the meter."""
    meter.begin("idle")
    t0 = clock()
    sleep(idle_s)
    idle_rails = meter.end("idle")
    idle_elapsed = clock() - t0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        meter.begin("work")
        t0, samples = clock(), 0
        while True:
            take()
            samples += 1
            if clock() - t0 >= window_s:
                break
        work_elapsed = clock() - t0
        rails = meter.end("work")
    finally:
        if gc_was_enabled:
            gc.enable()
    return EnergyWindow(idle_elapsed, idle_rails, work_elapsed, samples * calls_per_sample, rails)


def check_power(power_w: float, idle_w: float, limit_w: float | None, tolerance: float = 0.0) -> tuple[bool, str]:
    """The self-check: work must draw more than idle, and no more than the stated limit.

    `tolerance` is the source's stated reading accuracy as a fraction (NVML: ±5%). A board
    held at its power cap reads about its limit, give or take that accuracy (measured on the
    H200: 700.9 W against 700 W), and such a row is an honest cap-bound measurement; only a
    reading beyond the limit by more than the counter can be wrong is flagged.
    """
    if not power_w > idle_w:
        return False, f"flagged: {power_w:.4g} W during work is not above {idle_w:.4g} W idle"
    ceiling = limit_w * (1 + tolerance) if limit_w is not None else None
    if ceiling is not None and power_w > ceiling:
        slack = f" (+{tolerance:.0%}, the counter's stated accuracy)" if tolerance else ""
        return False, f"flagged: {power_w:.4g} W during work is above the device's stated {limit_w:.4g} W limit{slack}"
    if limit_w is None:
        limit = " (no stated limit)"
    elif power_w > limit_w:
        limit = f", at the stated {limit_w:.4g} W limit (within the counter's ±{tolerance:.0%})"
    else:
        limit = f", under the stated {limit_w:.4g} W limit"
    return True, f"ok: {power_w:.4g} W during work > {idle_w:.4g} W idle{limit}"


def derived(j_per_call: float, flops: float | None, rates: Mapping[str, float]) -> dict[str, float | None]:
    """Per-watt figures from the workload's own units. `rates` is the workload's work per
    call (workloads.base.Workload.rates): `*tokens_per_s` keys count tokens per call
    (decode tokens for generate, batch*seq for a training step), and a workload whose
    rates count `samples_per_s` is a training step, one call per optimizer step."""
    tokens = next((v for k, v in rates.items() if k.endswith("tokens_per_s")), None)
    return {
        "tflops_per_watt": flops / j_per_call / 1e12 if flops else None,
        "tokens_per_joule": tokens / j_per_call if tokens else None,
        "joules_per_step": j_per_call if "samples_per_s" in rates else None,
    }


def energy_columns(meter: Meter, window: EnergyWindow, median_s: float | None, flops: float | None,
                   rates: Mapping[str, float]) -> dict[str, Any]:
    """A window as row columns (the schema's energy block)."""
    scope = [r for r in meter.scope if r in window.rails]
    if len(scope) != len(meter.scope) or window.calls <= 0 or window.work_s <= 0 or window.idle_s <= 0:
        return {"energy_note": f"incomplete window: rails {sorted(window.rails)} of scope {list(meter.scope)}, {window.calls} calls"}
    joules = sum(window.rails[r] for r in scope)
    idle_w = sum(window.idle_rails.get(r, 0.0) for r in scope) / window.idle_s
    power_w = joules / window.work_s
    limit_w = meter.limit_w()
    valid, check = check_power(power_w, idle_w, limit_w, meter.limit_tolerance())
    per_call_s = window.work_s / window.calls
    if median_s and abs(per_call_s / median_s - 1) > 0.25:
        check += f"; the window ran at {per_call_s / median_s:.2f}x the timed median per call"
    j_per_call = joules / window.calls
    return {
        "energy_j_per_call": j_per_call,
        "energy_power_w": power_w,
        "energy_idle_w": idle_w,
        "energy_limit_w": limit_w,
        "energy_window_s": window.work_s,
        "energy_window_calls": window.calls,
        "energy_window_per_call_s": per_call_s,
        "energy_source": meter.name,
        "energy_scope": "+".join(meter.scope),
        "energy_rails": json.dumps({k: round(v, 6) for k, v in window.rails.items()}, sort_keys=True),
        "energy_check": check,
        "energy_valid": valid,
        "energy_note": "; ".join(meter.skipped) or None,
        **derived(j_per_call, flops, rates),
    }


def measure_case(meter: Meter | str, take: Callable[[], Any], calls_per_sample: int, idle_s: float, window_s: float,
                 median_s: float | None, flops: float | None, rates: Mapping[str, float]) -> dict[str, Any]:
    """The row's energy columns, or only `energy_note` with the reason they are null. A
    source that fails here costs the energy columns, never the row: the timing is done."""
    if isinstance(meter, str):
        return {"energy_note": meter}
    try:
        window = measure_window(meter, take, calls_per_sample, idle_s, window_s)
    except Exception as exc:
        return {"energy_note": f"energy source failed mid-run: {describe(exc)}"}
    return energy_columns(meter, window, median_s, flops, rates)
