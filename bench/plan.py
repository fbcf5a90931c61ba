"""What runs: the cases of a run, and the message that carries one case to a worker.

Both sides of the pipe speak these types: the runner plans `Case`s and sends each as a
`CaseMessage`; the worker reads the message back with `CaseMessage.from_json` and seeds
its inputs with `case_seed`, so every framework running a case sees the same numbers.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from bench import measure
from workloads import WORKLOADS, params_key


@dataclass(frozen=True)
class Case:
    framework: str
    workload: str
    params: Mapping[str, Any]
    dtype: str

    @property
    def label(self) -> str:
        p = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.framework} {self.workload} {self.dtype} {p}"


def plan(
    frameworks: Sequence[str],
    workloads: Sequence[str],
    dtypes: Sequence[str],
    suite: str,
    params: Sequence[Mapping[str, Any]] | None = None,
) -> list[Case]:
    """Framework-major order, so each framework's worker starts once per environment.
    `params` replaces the suite's parameter grid (one workload at a time)."""
    cases = []
    for fw in frameworks:
        for wl in workloads:
            workload = WORKLOADS[wl]
            for params_ in params or workload.cases(suite):
                for dtype in dtypes:
                    if dtype in workload.dtypes:
                        cases.append(Case(fw, wl, params_, dtype))
    return cases


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

    @classmethod
    def for_case(cls, case: Case, timings: Sequence[str], protocol: measure.Protocol) -> CaseMessage:
        return cls(case.workload, dict(case.params), case.dtype, tuple(timings), protocol)

    def to_json(self) -> dict[str, Any]:
        """The JSON object sent on the wire (json.dumps-able)."""
        return {
            "op": "case",
            "workload": self.workload,
            "params": dict(self.params),
            "dtype": self.dtype,
            "timings": list(self.timings),
            "protocol": dataclasses.asdict(self.protocol),
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
        )
