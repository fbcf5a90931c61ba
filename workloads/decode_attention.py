"""Decode attention: a few new query tokens against a long key/value cache, with
grouped-query heads (GQA), softmax(Q·Kᵀ·scale)·V with no mask (every cached token is
in the past of the new ones).

This is the attention an LLM runs once per layer per generated token. Its arithmetic is
tiny (q_len rows) and it reads the whole K/V cache once, so it is bandwidth-bound: the
byte count is the K/V read alone and GB/s is the figure to put next to the copy ceiling
(the `stream` workload). Layout (batch, heads, tokens, head_dim) as torch and MLX take
it; `heads` query heads share `kv_heads` key/value heads, query head h reading kv head
h // (heads / kv_heads) (torch's `enable_gqa`, JAX's and MLX's native grouping, Keras's
repeat all use this order).
"""

from __future__ import annotations

import numpy as np

from workloads.base import DENSE_TOLERANCE, Inputs, Params, Workload


def _flops(p: Params) -> float:
    """Q·Kᵀ and P·V, 2·q_len·kv_len·D each per query head (softmax left out, as in sdpa)."""
    return 4.0 * p["batch"] * p["heads"] * p["q_len"] * p["kv_len"] * p["head_dim"]


def _bytes(p: Params, itemsize: int) -> float:
    """The K/V cache read, which is what bounds the op (Q and the output are q_len rows)."""
    return float(2 * itemsize * p["batch"] * p["kv_heads"] * p["kv_len"] * p["head_dim"])


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    if p["heads"] % p["kv_heads"]:
        raise ValueError(f"heads ({p['heads']}) must be a multiple of kv_heads ({p['kv_heads']})")
    q = rng.standard_normal((p["batch"], p["heads"], p["q_len"], p["head_dim"]))
    kv = (p["batch"], p["kv_heads"], p["kv_len"], p["head_dim"])
    return {"q": q, "k": rng.standard_normal(kv), "v": rng.standard_normal(kv)}


def _check_index(p: Params) -> tuple[slice, ...]:
    """Batch 0, every head: one query row per head is cheap even against a 32k cache."""
    return (slice(0, 1),)


def _reference(x: Inputs, p: Params) -> np.ndarray:
    q = np.asarray(x["q"][:1], dtype=np.float64)
    group = p["heads"] // p["kv_heads"]
    k, v = (np.repeat(np.asarray(x[n][:1], dtype=np.float64), group, axis=1) for n in ("k", "v"))
    scores = (q @ np.swapaxes(k, -1, -2)) / np.sqrt(p["head_dim"])
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


def _case(kv_len: int, heads: int = 14, kv_heads: int = 2, head_dim: int = 64, batch: int = 1, q_len: int = 1) -> dict:
    """Defaults are Qwen2.5-0.5B's attention (14 query heads over 2 KV heads of 64)."""
    return {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": q_len, "kv_len": kv_len, "head_dim": head_dim}


DECODE_ATTENTION = Workload(
    name="decode_attention",
    summary="one query token against a K/V cache, grouped-query heads (LLM decode; bandwidth-bound)",
    dtypes=("fp32", "fp16", "bf16"),
    suites={
        "quick": [_case(2048)],
        "full": [
            _case(512),
            _case(4096),
            _case(32768),
            _case(4096, heads=32, kv_heads=8, head_dim=128),  # Llama-3-8B-shaped
            _case(32768, heads=32, kv_heads=8, head_dim=128),
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance=DENSE_TOLERANCE,
    check_index=_check_index,
)
