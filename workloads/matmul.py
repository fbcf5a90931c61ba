"""Dense matrix multiply C = A·B: the op every ML framework lives or dies by.

Square sizes show peak throughput; LLM-shaped ones (few rows times a projection
weight) are what token-by-token inference actually runs, and are bandwidth-bound.
"""

from __future__ import annotations

import numpy as np

from workloads.base import DENSE_TOLERANCE, Inputs, Params, Workload


def _flops(p: Params) -> float:
    return 2.0 * p["m"] * p["n"] * p["k"]


def _bytes(p: Params, itemsize: int) -> float:
    return float(itemsize * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"]))


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    return {
        "a": rng.uniform(-1.0, 1.0, size=(p["m"], p["k"])),
        "b": rng.uniform(-1.0, 1.0, size=(p["k"], p["n"])),
    }


CHECK_ROWS = 256


def _reference(x: Inputs, p: Params) -> np.ndarray:
    a = np.asarray(x["a"][:CHECK_ROWS], dtype=np.float64)
    return a @ np.asarray(x["b"], dtype=np.float64)


def _mnk(m: int, n: int, k: int) -> dict[str, int]:
    return {"m": m, "n": n, "k": k}


MATMUL = Workload(
    name="matmul",
    summary="C = A·B, square and LLM-shaped (rows × projection weight)",
    dtypes=("fp32", "tf32", "fp16", "bf16"),
    suites={
        "quick": [_mnk(256, 256, 256), _mnk(16, 1024, 1024)],
        "full": [
            _mnk(1024, 1024, 1024),
            _mnk(4096, 4096, 4096),
            _mnk(8192, 8192, 8192),
            _mnk(16, 4096, 4096),
            _mnk(512, 11008, 4096),
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance=DENSE_TOLERANCE,
    check_index=lambda p: (slice(0, CHECK_ROWS),),
)
