"""What runs: the cases of a run, and the message that carries one case to a worker.

Both sides of the pipe speak these types: the runner plans `Case`s and sends each as a
`CaseMessage`; the worker reads the message back with `CaseMessage.from_json` and seeds
its inputs with `case_seed`, so every framework running a case sees the same numbers.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence

from bench import measure
from workloads import WORKLOADS, params_key


@dataclass(frozen=True)
class Case:
    framework: str
    workload: str
    params: Mapping[str, Any]
    dtype: str
    mode: str = "eager"  # workloads.base.MODES: eager, or the framework's compiler over the whole step
    process: int = 0  # which fresh worker process of this framework runs it (interleave)

    @property
    def label(self) -> str:
        p = " ".join(f"{k}={v}" for k, v in self.params.items())
        mode = " compiled" if self.mode != "eager" else ""
        return f"{self.framework} {self.workload} {self.dtype}{mode} {p}"


def plan(
    frameworks: Sequence[str],
    workloads: Sequence[str],
    dtypes: Sequence[str],
    suite: str,
    params: Sequence[Mapping[str, Any]] | None = None,
    modes: Sequence[str] = ("eager",),
) -> list[Case]:
    """Framework-major order, so each framework's worker starts once per environment.
    `params` replaces the suite's parameter grid (one workload at a time). Each case runs
    in every one of `modes` its workload is measured in (a one-op workload: eager only)."""
    cases = []
    for fw in frameworks:
        for wl in workloads:
            workload = WORKLOADS[wl]
            for params_ in params or workload.cases(suite):
                for dtype in dtypes:
                    if dtype in workload.dtypes:
                        cases.extend(Case(fw, wl, params_, dtype, mode) for mode in modes if mode in workload.modes)
    return cases


def interleave(cases: Sequence[Case], processes: int,
               environment: Callable[[Case], Hashable] | None = None) -> list[Case]:
    """Every case in `processes` fresh worker processes per framework, interleaved across
    frameworks: A's cases in its process 0, then B's in its process 0, …, then A's in process 1
    (A1 B1 C1 A2 B2 C2 …), so drift and a neighbour's job land on every framework alike rather
    than on whichever ran last. Within a process the cases keep the plan's order, grouped by
    `environment` where given (the worker environment a case needs, e.g. MLX's TF32 switch
    per dtype: a change of environment restarts the worker, so each process starts each of
    its environments once instead of at every change of dtype)."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    by_framework: dict[str, list[Case]] = {}
    for case in cases:
        by_framework.setdefault(case.framework, []).append(case)
    if environment is not None:
        for name, group in by_framework.items():
            first_seen: dict[Hashable, int] = {}
            for case in group:
                first_seen.setdefault(environment(case), len(first_seen))
            by_framework[name] = sorted(group, key=lambda c: first_seen[environment(c)])  # stable: plan order kept
    return [dataclasses.replace(case, process=p) for p in range(processes)
            for group in by_framework.values() for case in group]


def case_seed(workload: str, params: Mapping[str, Any], dtype: str) -> int:
    """The same inputs for every framework running this case (like with like)."""
    return zlib.crc32(f"{workload}|{params_key(params)}|{dtype}".encode())


@dataclass(frozen=True)
class CaseMessage:
    """One case as the runner sends it to a worker: what to build and how to time it.

    On the wire it is one JSON object per line, `{"op": "case", ...}`; the worker's other
    message is `{"op": "exit"}`. Fields a sender leaves out take the defaults below.
    """

    workload: str
    params: Mapping[str, Any]
    dtype: str
    timings: tuple[str, ...] = measure.TIMING_KINDS
    protocol: measure.Protocol = field(default_factory=measure.Protocol)
    mode: str = "eager"  # the execution mode to build (the adapter's `compiled`)
    suite: str = "quick"  # a mode too slow to set up for the quick suite is skipped there
    inputs_cache: str = ""  # the run's bench.case_cache entry for this case's inputs and reference ("" none)

    @classmethod
    def for_case(cls, case: Case, timings: Sequence[str], protocol: measure.Protocol, suite: str = "quick",
                 inputs_cache: str = "") -> CaseMessage:
        return cls(case.workload, dict(case.params), case.dtype, tuple(timings), protocol, case.mode, suite, inputs_cache)

    def to_json(self) -> dict[str, Any]:
        """The JSON object sent on the wire (json.dumps-able)."""
        return {
            "op": "case",
            "workload": self.workload,
            "params": dict(self.params),
            "dtype": self.dtype,
            "timings": list(self.timings),
            "protocol": dataclasses.asdict(self.protocol),
            "mode": self.mode,
            "suite": self.suite,
            "inputs_cache": self.inputs_cache,
        }

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> CaseMessage:
        """Read a decoded `{"op": "case", ...}` object; unknown protocol knobs are an error."""
        return cls(
            workload=message["workload"],
            params=dict(message["params"]),
            dtype=message["dtype"],
            timings=tuple(message.get("timings", measure.TIMING_KINDS)),
            protocol=measure.Protocol(**message.get("protocol", {})),
            mode=message.get("mode", "eager"),
            suite=message.get("suite", "quick"),
            inputs_cache=message.get("inputs_cache", ""),
        )
