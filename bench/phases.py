"""Where a case's wall time goes: seconds per named step, in the order they ran.

A case's row carries `case_wall_s` (the runner's clock around the whole case), which says
a Qwen-shaped `generate` case costs a minute but not why: the model build, a compile on the
first call, the float64 checks on the host, or the timing itself. The worker times its
steps with one `Phases` (stored in the row's metrics as `phase_s` and printed as one line
in the framework's log), and the generate adapters time the figures they gather the same
way (`check_phase_s`), so a slow suite names its slow step instead of being guessed at.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Phases:
    """Wall seconds per step; a step entered twice adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def rounded(self, digits: int = 3) -> dict[str, float]:
        return {name: round(s, digits) for name, s in self.seconds.items()}

    def line(self) -> str:
        """`inputs 1.2 s · prepare 0.4 s · …`, for a log."""
        return " · ".join(f"{name} {s:.1f} s" for name, s in self.seconds.items())
