"""MLX's `generate` (found by MLXAdapter.prepare), the way mlx-lm runs a
model: `mx.fast.rms_norm`, `mx.fast.rope` (traditional=False: rotate-half, with the
cache offset), `mx.fast.scaled_dot_product_attention` with un-tiled KV heads (GQA is
native), a preallocated cache written by slice assignment (mlx-lm's KVCache), and
quantized weights through `mx.quantized_matmul` on the shared codes packed into MLX's
uint32 layout (not `mx.quantize`, whose own rounding would give MLX other weights).
Eager mode: a lazy graph per step, as mlx-lm's generate runs it (it does not compile the
step). Compiled mode: the decode step under `mx.compile`, which needs one graph for every
position: the position is an array, the cache is written with `mx.slice_update` at that
position, attention reads the whole preallocated cache under a length mask, and
`mx.fast.rope` takes the array offset (prefill stays eager: it runs once). A compiled
case first times both steps on its own model and is `unsupported` (with the two times)
unless compiling made the step faster. The barrier evaluates logits and cache.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import mlx.core as mx
import numpy as np

from bench import measure
from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.generation import generation_prepared, quality_scorers, weight_bits
from workloads import llama, quant


class MLXLlamaOps:
    def __init__(self, p: Mapping[str, Any]) -> None:
        self.hd, self.eps, self.theta = llama.head_dim(p), llama.norm_eps(p), llama.rope_theta(p)

    def embed(self, table: mx.array, tokens: mx.array) -> mx.array:
        return table[tokens]

    def linear(self, x: mx.array, w: Any) -> mx.array:
        if isinstance(w, tuple):
            wq, s, b, group, bits = w
            return mx.quantized_matmul(x, wq, s, b, transpose=True, group_size=group, bits=bits)
        return x @ w.T

    def rms_norm(self, x: mx.array, g: mx.array) -> mx.array:
        return mx.fast.rms_norm(x, g, self.eps)

    def silu(self, x: mx.array) -> mx.array:
        return x * mx.sigmoid(x)

    def split_heads(self, x: mx.array, heads: int) -> mx.array:
        b, t, _ = x.shape
        return x.reshape(b, t, heads, self.hd).transpose(0, 2, 1, 3)

    def merge_heads(self, x: mx.array) -> mx.array:
        b, h, t, hd = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, h * hd)

    def rope(self, x: mx.array, pos: int) -> mx.array:
        return mx.fast.rope(x, self.hd, traditional=False, base=self.theta, scale=1.0, offset=pos)

    def attend(self, q: mx.array, k: mx.array, v: mx.array, cache: Any, pos: int) -> tuple[mx.array, Any]:
        t = q.shape[-2]
        if cache is not None:
            cache["k"][:, :, pos : pos + t, :] = k
            cache["v"][:, :, pos : pos + t, :] = v
            k, v = cache["k"][:, :, : pos + t, :], cache["v"][:, :, : pos + t, :]
        if pos != 0 and t > 1:
            raise NotImplementedError("chunked prefill after a cached context is not part of this workload")
        mask = "causal" if t > 1 else None
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=self.hd**-0.5, mask=mask), cache

    def logits(self, x: mx.array) -> mx.array:
        return x.astype(mx.float32)


class MLXStaticLlamaOps(MLXLlamaOps):
    """One-token decode with every shape fixed (what mx.compile needs to trace once): the
    position `pos` is an int32 array of shape (1,), the cache a dict written functionally."""

    def rope(self, x: mx.array, pos: Any) -> mx.array:
        """`mx.fast.rope` takes an array offset as a scalar or as one offset per sequence (B,):
        MLX's CUDA kernel (mlx/backend/cuda/rope.cu) and Metal's outside its one-token fast
        path read sequence b's at offset[b * stride], so a (1,) offset at batch 4 sent
        sequences 1-3 past its end (the H200 run's cache-vs-recompute gap was 0.43). A 0-d
        offset is one position for the whole batch."""
        return super().rope(x, pos.reshape(()))

    def attend(self, q: mx.array, k: mx.array, v: mx.array, cache: Any, pos: Any) -> tuple[mx.array, Any]:
        start = mx.concatenate([mx.zeros((2,), mx.int32), pos, mx.zeros((1,), mx.int32)])
        kc = mx.slice_update(cache["k"], k, start, (0, 1, 2, 3))
        vc = mx.slice_update(cache["v"], v, start, (0, 1, 2, 3))
        visible = mx.arange(kc.shape[2])[None, None, None, :] <= pos  # (1, 1, 1, L): positions 0..pos
        mask = mx.where(visible, mx.array(0.0, q.dtype), mx.array(-mx.inf, q.dtype))
        return mx.fast.scaled_dot_product_attention(q, kc, vc, scale=self.hd**-0.5, mask=mask), {"k": kc, "v": vc}


def prepare_generate(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits, group = weight_bits(p), p["group"]

    def build(name: str, flat: Mapping[str, np.ndarray]) -> Any:
        if name in flat:
            return adapter.asarray(flat[name], dtype)
        wq = mx.array(quant.pack_uint32(np.asarray(flat[name + ".q"]), bits))
        return (wq, adapter.asarray(flat[name + ".scale"], dtype), adapter.asarray(flat[name + ".bias"], dtype), group, bits)

    tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype))
    mx.eval(tree)
    max_len = p["prompt"] + p["new_tokens"]
    shape = (p["batch"], p["kv_heads"], max_len, llama.head_dim(p))
    caches = [{"k": mx.zeros(shape, dtype=tree["embed"].dtype), "v": mx.zeros(shape, dtype=tree["embed"].dtype)} for _ in range(p["layers"])]
    mx.eval(caches)
    ops = MLXLlamaOps(p)

    def prefill(tokens: mx.array) -> tuple[mx.array, list[Any]]:
        return llama.forward(ops, tree, tokens, caches, 0, p)[0], caches

    def decode(tokens: mx.array, pos: int) -> tuple[mx.array, list[Any]]:
        return llama.forward(ops, tree, tokens[:, None], caches, pos, p)[0], caches  # the barrier evaluates both

    how = "lazy eager steps"
    if adapter.compiled:
        eager_decode = decode
        decode, how = _compiled_decode(tree, caches, p), "mx.compile(decode step) over a fixed-shape cache (slice_update + length mask), eager prefill"
        _require_compile_helps(adapter, p, prefill, eager_decode, decode)
    weights = f"dense {dtype}" if bits == 16 else f"mx.quantized_matmul affine int{bits} g{group}, {dtype} activations"
    return generation_prepared(
        adapter,
        dict(p),
        dtype,
        x["prompt"],
        prefill=lambda t: _evaluated(prefill(t)),
        decode=decode,
        logits_of=lambda out: out[0],
        put=lambda a: mx.array(np.asarray(a, dtype=np.int32)),
        argmax=lambda logits: np.array(mx.argmax(logits, axis=-1)),
        implementation=f"mx.fast (rms_norm, rope, SDPA with native GQA), preallocated KV cache, {how}; weights {weights}",
        mode=adapter.mode,
        **quality_scorers(adapter, p, dtype, x, ops, tree),
    )


COMPARE_PROTOCOL = measure.Protocol(budget_s=1.0)
"""How _require_compile_helps times each decode step: bench.measure's latency protocol
(warm-up, then samples until the median's 95% interval is within ±2% or a second is spent)."""


def _require_compile_helps(adapter: Any, p: Mapping[str, Any], prefill: Any, eager: Any, compiled: Any) -> None:
    """Unsupported unless the compiled decode step is faster than the eager one, measured
    here, in this process, on this model, through the suite's own timing protocol: a
    compiled row slower than eager would publish a worse "best" (on the H200, MLX CUDA:
    4.3 ms compiled vs 3.6 ms eager per step; docs/llm.md has where a step's time goes).
    MLX_DISABLE_COMPILE (MLX's switch) leaves nothing to compare: the check is not made."""
    if os.environ.get("MLX_DISABLE_COMPILE"):
        return
    n = p["prompt"]
    mx.eval(prefill(mx.array(np.zeros((p["batch"], n), np.int32))))
    token = mx.array(np.zeros((p["batch"],), np.int32))
    timed = {}
    for name, decode in (("compiled", compiled), ("eager", eager)):
        def step(decode: Any = decode) -> Any:
            return decode(token, n)

        per_call = measure.warm_up(step, adapter.barrier, COMPARE_PROTOCOL)  # the compiled path traces here
        timed[name] = measure.time_latency(step, adapter.barrier, per_call, COMPARE_PROTOCOL).summary
    compiled_s, eager_s = timed["compiled"], timed["eager"]
    if not compiled_s.median < eager_s.median:
        raise Unsupported(
            f"mx.compile does not speed this decode step up on {adapter.backend}: measured here {compiled_s.median * 1e3:.3f} ms "
            f"[{compiled_s.ci_low * 1e3:.3f}-{compiled_s.ci_high * 1e3:.3f}] compiled vs {eager_s.median * 1e3:.3f} ms "
            f"[{eager_s.ci_low * 1e3:.3f}-{eager_s.ci_high * 1e3:.3f}] eager per step (medians of {compiled_s.n} and {eager_s.n} "
            "latency samples, 95% intervals); MLX's best here is its eager mode"
        )


def _compiled_decode(tree: Any, caches: list[dict[str, mx.array]], p: Mapping[str, Any]) -> Any:
    """The decode step through mx.compile: caches in, caches out (the list is updated in
    place so the eager prefill writes the same arrays the next step reads)."""
    ops = MLXStaticLlamaOps(p)

    def step(tokens: mx.array, pos: mx.array, cache_in: list[dict[str, mx.array]]) -> tuple[mx.array, list[dict[str, mx.array]]]:
        logits, new = llama.forward(ops, tree, tokens[:, None], cache_in, pos, p)
        return logits, new

    compiled = mx.compile(step)
    positions: dict[int, mx.array] = {}

    def decode(tokens: mx.array, pos: int) -> tuple[mx.array, list[Any]]:
        if pos not in positions:
            positions[pos] = mx.array([pos], dtype=mx.int32)
        logits, new = compiled(tokens, positions[pos], list(caches))
        caches[:] = new
        return logits, caches

    return decode


def _evaluated(out: tuple[mx.array, list[Any]]) -> mx.array:
    """Prefill's logits with the cache it wrote evaluated too (the cache must not stay a
    growing lazy graph between steps)."""
    mx.async_eval(out)
    return out[0]
