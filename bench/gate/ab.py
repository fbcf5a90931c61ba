"""Interleaved A/B: the same cases under two environments, alternating fresh processes.

The question a Mac user asks before upgrading (torch 2.13 → 2.15, jax-metal → jax-mps) is
"is B slower than A on my machine?". Measuring A for ten minutes and then B for ten lets
whatever drifts in between (a neighbour's job, thermals, a background index) pass for a
difference. So the two sides alternate, A B A B …: each round runs the cases once under A
and once under B, each run in fresh worker processes, and drift lands on both sides
alike. The per-process figures then go through exactly the statistics of `bench compare`
(`bench.gate.compare`), with A as the baseline and B as the candidate.

This module is the run side; `bench.gate.commands.cmd_ab` is the command line around it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from bench.catalog import FRAMEWORKS, FrameworkSpec, resolve_framework
from bench.results import ResultsWriter
from bench.runner import Case, Runner, RunConfig


@dataclass(frozen=True)
class Side:
    """One environment: a name for files and tables, and the run configuration
    (whose `pythons` say which interpreter each framework's worker uses)."""

    name: str
    config: RunConfig

    def describe(self) -> str:
        envs = ", ".join(f"{fw}={path}" for fw, path in sorted(self.config.pythons.items()))
        return f"{self.name} ({envs or 'this interpreter'})"


def parse_env_spec(text: str) -> tuple[str, str]:
    """'torch=/path/to/python' → ('torch', '/path/to/python'); ValueError naming what is wrong."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise ValueError(f"expected FRAMEWORK=/path/to/python, got {text!r}")
    framework = resolve_framework(name)  # ValueError naming the frameworks
    python = Path(path).expanduser()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise ValueError(f"{framework}={path}: not an executable interpreter")
    return framework, str(python)


RunOnce = Callable[[RunConfig, Sequence[Case], Path, str], None]


def run_suite_once(config: RunConfig, cases: Sequence[Case], path: Path, run_id: str,
                   frameworks: Mapping[str, FrameworkSpec] = FRAMEWORKS) -> None:
    """One run of `cases` in fresh worker processes (a new Runner starts its own workers
    and stops them when it returns), written to `path`."""
    Runner(config, ResultsWriter(path), run_id, frameworks=frameworks).run(cases)


def run_interleaved(sides: Sequence[Side], cases: Sequence[Case], rounds: int, out_dir: Path, stamp: str,
                    run_once: RunOnce | None = None,
                    on_run: Callable[[Side, int, Path], None] | None = None) -> dict[str, list[Path]]:
    """Runs every side once per round, in the order given, for `rounds` rounds (A B A B …).

    Returns each side's result files. A process is the unit the gate tests, so each run
    must start its own workers: `run_once` (default `run_suite_once`) is called afresh for
    every (round, side).
    """
    run_once = run_once or run_suite_once
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    files: dict[str, list[Path]] = {side.name: [] for side in sides}
    for i in range(1, rounds + 1):
        for side in sides:
            path = out_dir / f"{side.name}-{i}.parquet"
            if on_run:
                on_run(side, i, path)
            run_once(side.config, cases, path, f"{stamp}-{side.name}-{i}")
            files[side.name].append(path)
    return files
