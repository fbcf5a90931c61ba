"""What every energy source offers the energy window: named rails, read as joules.

A source wraps one of Zeus's counter readers (NVML's total-energy counter, RAPL through
powercap, Apple's IOReport "Energy Model" through zeus-apple-silicon). The window only
ever asks two things of it: start a measurement, and end it with the joules each rail
used in between. A source that cannot be read raises `EnergyUnavailable` with the reason,
which becomes the row's `energy_note`: the columns are then null, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class EnergyUnavailable(Exception):
    """This source cannot measure here; the message says why, in one line a user can act on."""


class EnergySource(Protocol):
    """One counter reader. `begin(key)` starts a window; `end(key)` returns joules per rail
    for it. Rails are named so a row says what was read: "gpu0", "cpu0", "dram0",
    "soc.gpu", ... `scope` names the rails whose sum is the row's energy figure (the
    others are recorded beside it); `limit_w()` is the device's stated power limit, or
    None where the hardware states none. A source may also carry `limit_tolerance`, its
    stated reading accuracy as a fraction, which the self-check allows above the limit
    (absent: 0)."""

    name: str
    scope: tuple[str, ...]

    def begin(self, key: str) -> None: ...

    def end(self, key: str) -> dict[str, float]: ...

    def limit_w(self) -> float | None: ...


@dataclass
class CounterWindows:
    """Windows over cumulative counters (NVML, RAPL): begin stores a reading, end subtracts
    it. Zeus's own ZeusMonitor.begin_window/end_window do the same subtraction; keeping it
    here lets every source share the window protocol and keep its own null reason."""

    started: dict[str, dict[str, float]]

    def __init__(self) -> None:
        self.started = {}

    def begin(self, key: str, reading: dict[str, float]) -> None:
        self.started[key] = reading

    def end(self, key: str, reading: dict[str, float]) -> dict[str, float]:
        start = self.started.pop(key)
        return {rail: reading[rail] - start[rail] for rail in start if rail in reading}


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and first line of text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")
