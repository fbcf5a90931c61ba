"""Batched matrix multiply C[i] = A[i]·B[i]: many small independent products in one call.

What attention without a fused kernel, mixture-of-experts layers and per-head projections
run. Small per-matrix sizes make it dispatch- and bandwidth-bound where one large matmul
is compute-bound, so the two are different workloads.
"""

from __future__ import annotations

import numpy as np

from workloads.base import DENSE_TOLERANCE, Inputs, Params, Workload


def _flops(p: Params) -> float:
    return 2.0 * p["batch"] * p["m"] * p["n"] * p["k"]


def _bytes(p: Params, itemsize: int) -> float:
    return float(itemsize * p["batch"] * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"]))


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    return {
        "a": rng.uniform(-1.0, 1.0, size=(p["batch"], p["m"], p["k"])),
        "b": rng.uniform(-1.0, 1.0, size=(p["batch"], p["k"], p["n"])),
    }


CHECK_BATCHES, CHECK_ROWS = 4, 256


def _check_index(p: Params) -> tuple[slice, ...]:
    """The first few products' first rows: every one witnesses the kernel, float64 stays cheap."""
    return (slice(0, CHECK_BATCHES), slice(0, CHECK_ROWS))


def _reference(x: Inputs, p: Params) -> np.ndarray:
    a = np.asarray(x["a"][:CHECK_BATCHES, :CHECK_ROWS], dtype=np.float64)
    return a @ np.asarray(x["b"][:CHECK_BATCHES], dtype=np.float64)


def _case(batch: int, m: int, n: int, k: int) -> dict[str, int]:
    return {"batch": batch, "m": m, "n": n, "k": k}


BMM = Workload(
    name="bmm",
    summary="batched matmul C[i] = A[i]·B[i] (per-head and per-expert products)",
    dtypes=("fp32", "tf32", "fp16", "bf16"),
    suites={
        "quick": [_case(16, 64, 64, 256)],
        "full": [
            _case(32, 1, 128, 1024),  # one token's scores against 32 heads' keys
            _case(1024, 64, 32, 256),  # many tiny products
            _case(16, 2048, 2048, 2048),  # compute-bound
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance=DENSE_TOLERANCE,
    check_index=_check_index,
)
