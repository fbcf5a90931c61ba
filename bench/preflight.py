"""Before any case is built: will it fit in memory?

A `-p` size is easy to get wrong by a factor of a thousand, and a case larger than the
machine does not fail cleanly: the worker allocates until the kernel's OOM killer picks a
victim, which on a machine without a cgroup may be any process. So each case's memory is
estimated from the workload's own byte count, and a plan that cannot fit is refused with
one line (`bench run --force-memory` overrides).

The estimate: the worker draws inputs in float64, rounds a copy to the storage dtype,
computes a float64 reference (of a slice, for large cases) and hands the framework its own
copy at the dtype's width, so the host holds about two float64-sized copies of what one
call moves (`bytes_moved` at 8 bytes per element). A device (CUDA) holds the framework's copy: inputs and outputs at the dtype's
width, twice over for workspace and the queued timing's retained output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Iterable

import psutil

from bench.fmt import fmt_bytes
from bench.precision import FORMATS
from workloads import WORKLOADS

HOST_COPIES = 2.0
DEVICE_COPIES = 2.0


# A `-p data=FILE` corpus (workloads.corpus.load) is read whole as text (1 byte a character
# for ASCII), encoded to bytes (1) and widened to int64 tokens (8), with all three alive at
# the peak: a 2 GB file needed about 20 GB and was OOM-killed while the estimate said kilobytes.
CORPUS_BYTES_PER_FILE_BYTE = 10


def corpus_bytes(params: dict[str, Any]) -> float:
    """Host memory the worker needs to hold a `data=FILE` corpus (0 for the built-in one or
    a path that is not a file: the workload's own check names that)."""
    data = params.get("data")
    if not isinstance(data, str) or data == "builtin":
        return 0.0
    try:
        size = os.stat(data).st_size
    except (OSError, ValueError):
        return 0.0
    return float(CORPUS_BYTES_PER_FILE_BYTE * size)


def host_bytes(workload: str, params: dict[str, Any]) -> float:
    return HOST_COPIES * float(WORKLOADS[workload].bytes_moved(params, 8)) + corpus_bytes(params)


def device_bytes(workload: str, params: dict[str, Any], dtype: str) -> float:
    return DEVICE_COPIES * float(WORKLOADS[workload].bytes_moved(params, FORMATS[dtype].itemsize))


def gpu_free_bytes() -> int | None:
    """Free memory of the emptiest-first NVIDIA GPU (what a CUDA worker would use), or None
    where nvidia-smi is absent or says nothing readable."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return max(int(line.strip()) for line in out.splitlines() if line.strip()) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def check_memory(cases: Iterable[Any], device: str, available: int | None = None, gpu_free: int | None = None) -> None:
    """ValueError naming the largest case that cannot fit, with the estimate and what is free."""
    cases = list(cases)
    if not cases:
        return
    available = psutil.virtual_memory().available if available is None else available
    biggest = max(cases, key=lambda c: host_bytes(c.workload, dict(c.params)))
    need = host_bytes(biggest.workload, dict(biggest.params))
    if need > available:
        raise ValueError(f"{biggest.workload} {_describe(biggest.params)} needs about {fmt_bytes(need)} of host memory "
                         f"(estimated from its sizes), {fmt_bytes(available)} is available; choose smaller -p sizes, "
                         "or --force-memory to run it anyway")
    if device in ("cuda", "auto"):
        free = gpu_free_bytes() if gpu_free is None else gpu_free
        if free is None:
            return
        big = max(cases, key=lambda c: device_bytes(c.workload, dict(c.params), c.dtype))
        need = device_bytes(big.workload, dict(big.params), big.dtype)
        if need > free:
            raise ValueError(f"{big.workload} {_describe(big.params)} {big.dtype} needs about {fmt_bytes(need)} of GPU "
                             f"memory (estimated from its sizes), {fmt_bytes(free)} is free; choose smaller -p sizes, "
                             "or --force-memory to run it anyway")


def _describe(params: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in dict(params).items() if k != "model")
