"""Command-line value types shared by every command (argparse `type=` callables).

A leaf module, so that the run/show commands (bench.cli), the gate's commands and `bench ab`
validate a count or a duration the same way, with the same one-line message, without any of
them importing another's command line.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


class UsageError(Exception):
    """Bad input found after parsing (no case selected, a file in the way): the command line
    prints its one line and exits 2. Here, in the leaf every command imports, so a command's
    own module (bench.fidelity, bench.noise) can raise it without importing bench.cli."""


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (a count of runs, rounds, threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_ints(text: str) -> tuple[int, ...]:
    """Whole numbers ≥ 1, comma-separated ("1,4,16"): batch sizes, case numbers."""
    try:
        values = tuple(positive_int(part.strip()) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers, comma-separated, got {text!r}") from None
    return values


def cpu_list(text: str) -> tuple[int, ...]:
    """CPUs to bind workers to, as taskset writes them ("2,3", "0-3,8"), each one this
    process may run on. Binding exists where the OS has sched_setaffinity (Linux); macOS
    schedules threads itself, so there the option is refused rather than ignored."""
    if not hasattr(os, "sched_setaffinity"):
        raise argparse.ArgumentTypeError("binding to CPUs needs sched_setaffinity (Linux); this system has none")
    allowed = sorted(os.sched_getaffinity(0))
    choices = f"choose from {allowed[0]}-{allowed[-1]}" if allowed == list(range(allowed[0], allowed[-1] + 1)) else f"choose from {allowed}"
    ranges: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            if last < first:
                raise ValueError
            ranges.append((first, last))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPUs such as 2,3 or 0-3, got {text!r}; {choices}") from None
    # Each range is checked by its ends against the allowed CPUs before anything is built
    # from it: `0-100000000` once became a 10^8-element set (3 GiB) while parsing.
    usable = set(allowed)
    for first, last in ranges:
        outside = next((c for c in (first, last) if c not in usable), None)
        if outside is None:  # both ends usable: the range is no longer than the allowed span
            outside = next((c for c in range(first, last + 1) if c not in usable), None)
        if outside is not None:
            raise argparse.ArgumentTypeError(f"CPU {outside} is not one this process may use; {choices}")
    return tuple(sorted(c for c in usable if any(first <= c <= last for first, last in ranges)))


def positive_float(text: str) -> float:
    """A finite number > 0 (a budget in seconds); NaN and inf are refused like 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def new_output_file(text: str) -> Path:
    """An output file (--json, --markdown, ...) checked at parse time, before any work: a
    file bench did not write is never replaced (bench.safe_write says why, in one line)."""
    from bench import safe_write

    problem = safe_write.problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)
