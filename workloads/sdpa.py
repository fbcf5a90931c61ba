"""Scaled-dot-product attention, softmax(Q·Kᵀ·scale [+ causal mask])·V.

The canonical layout is (batch, heads, sequence, head_dim), as torch and MLX take it;
adapters whose API wants (batch, sequence, heads, head_dim) transpose outside the timed
region and back before the output is checked.
"""

from __future__ import annotations

import numpy as np

from workloads.base import DENSE_TOLERANCE, Inputs, Params, Workload


def _flops(p: Params) -> float:
    """Two matmuls of 2·S·S·D each per head; a causal mask skips half of them.

    The convention FlashAttention and the reference timings use, so TFLOP/s figures
    line up with published ones.
    """
    full = 4.0 * p["batch"] * p["heads"] * p["seq"] * p["seq"] * p["head_dim"]
    return full / 2 if p["causal"] else full


def _bytes(p: Params, itemsize: int) -> float:
    return float(4 * itemsize * p["batch"] * p["heads"] * p["seq"] * p["head_dim"])


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    shape = (p["batch"], p["heads"], p["seq"], p["head_dim"])
    return {name: rng.standard_normal(shape) for name in ("q", "k", "v")}


def _check_index(p: Params) -> tuple[slice, ...]:
    """Batch 0, first two heads: enough to witness the kernel, cheap in float64."""
    return (slice(0, 1), slice(0, 2))


def _reference(x: Inputs, p: Params) -> np.ndarray:
    idx = _check_index(p)
    q, k, v = (np.asarray(x[n][idx], dtype=np.float64) for n in ("q", "k", "v"))
    scores = (q @ np.swapaxes(k, -1, -2)) / np.sqrt(p["head_dim"])
    if p["causal"]:
        s = p["seq"]
        scores = np.where(np.tril(np.ones((s, s), dtype=bool)), scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


def _case(batch: int, heads: int, seq: int, head_dim: int, causal: bool) -> dict:
    return {"batch": batch, "heads": heads, "seq": seq, "head_dim": head_dim, "causal": causal}


SDPA = Workload(
    name="sdpa",
    summary="fused scaled-dot-product attention, causal and not",
    dtypes=("fp32", "fp16", "bf16"),
    suites={
        "quick": [_case(1, 4, 128, 64, False), _case(1, 4, 128, 64, True)],
        "full": [
            _case(1, 8, 1024, 64, False),
            _case(4, 32, 4096, 128, False),
            _case(4, 32, 4096, 128, True),
            _case(64, 8, 64, 128, False),
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance=DENSE_TOLERANCE,
    check_index=_check_index,
)
