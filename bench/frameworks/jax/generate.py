"""JAX's `generate` (found by JaxAdapter.prepare): in the compiled mode a
jitted prefill and a jitted decode step (in the eager mode the same functions, dispatched
op by op: JAX's eager execution, where each primitive is its own small compiled
computation and nothing fuses across them), each taking the KV cache as a donated argument and returning it
updated with `lax.dynamic_update_slice` (in place where the backend honours donation;
XLA:CPU does not and copies). The cache is preallocated (B, L, Hkv, hd) in JAX's SDPA
layout; decode attends over the whole cache with `key_value_seq_lengths` = pos+1, so
one compiled step serves every position (the position is a traced scalar). Attention is
`jax.nn.dot_product_attention` (native GQA). Quantized weights: uint8 codes (int4: two
per byte) dequantized inside the same jit as the dot (ops.dequant_matmul),
as JAX has no weight-only kernel.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.frameworks.base import Prepared
from bench.frameworks.generation import dequant_fused_weights, generation_prepared, stored_codes, weight_bits
from bench.frameworks.jax.ops import dequant_matmul
from workloads import llama


class JaxLlamaOps:
    def __init__(self, p: Mapping[str, Any]) -> None:
        self.hd, self.eps, self.theta = llama.head_dim(p), llama.norm_eps(p), llama.rope_theta(p)
        self.bits = p["bits"]  # every quantized linear has the case's bit width

    def embed(self, table: jax.Array, tokens: jax.Array) -> jax.Array:
        return jnp.take(table, tokens, axis=0)

    def linear(self, x: jax.Array, w: Any) -> jax.Array:
        if isinstance(w, dict):
            lead = x.shape[:-1]
            y = dequant_matmul(x.reshape(-1, x.shape[-1]), w["codes"], w["scale"], w["bias"], bits=self.bits)
            return y.reshape(*lead, -1)
        return x @ w.T

    def rms_norm(self, x: jax.Array, g: jax.Array) -> jax.Array:
        xf = x.astype(jnp.float32)
        return (xf * jax.lax.rsqrt(jnp.mean(xf * xf, -1, keepdims=True) + self.eps) * g.astype(jnp.float32)).astype(x.dtype)

    def silu(self, x: jax.Array) -> jax.Array:
        return jax.nn.silu(x)

    def split_heads(self, x: jax.Array, heads: int) -> jax.Array:
        b, t, _ = x.shape
        return x.reshape(b, t, heads, self.hd)  # (B, T, H, hd): jax.nn.dot_product_attention's layout

    def merge_heads(self, x: jax.Array) -> jax.Array:
        b, t, h, hd = x.shape
        return x.reshape(b, t, h * hd)

    def rope(self, x: jax.Array, pos: Any) -> jax.Array:
        t = x.shape[1]
        inv_freq = self.theta ** (-jnp.arange(0, self.hd, 2, dtype=jnp.float32) / self.hd)
        ang = (pos + jnp.arange(t, dtype=jnp.float32))[:, None] * inv_freq[None, :]
        cos, sin = jnp.cos(ang)[None, :, None, :], jnp.sin(ang)[None, :, None, :]
        xf = x.astype(jnp.float32)
        x1, x2 = xf[..., : self.hd // 2], xf[..., self.hd // 2 :]
        return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)

    def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, cache: Any, pos: Any) -> tuple[jax.Array, Any]:
        b, t = q.shape[:2]
        kc = jax.lax.dynamic_update_slice(cache["k"], k, (0, pos, 0, 0))
        vc = jax.lax.dynamic_update_slice(cache["v"], v, (0, pos, 0, 0))
        if t > 1:  # prefill from position 0: causal attention over the new keys themselves
            out = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        else:
            lengths = jnp.full((b,), pos + 1, dtype=jnp.int32)
            out = jax.nn.dot_product_attention(q, kc, vc, key_value_seq_lengths=lengths)
        return out, {"k": kc, "v": vc}

    def logits(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.float32)


def prepare_generate(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p)

    def build(name: str, flat: Mapping[str, np.ndarray]) -> Any:
        if name in flat:
            return adapter.asarray(flat[name], dtype)
        return {"codes": jax.device_put(stored_codes(flat[name + ".q"], bits), adapter.device), "scale": adapter.asarray(flat[name + ".scale"], dtype),
                "bias": adapter.asarray(flat[name + ".bias"], dtype)}  # fmt: skip

    tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype))
    ops = JaxLlamaOps(p)
    max_len = p["prompt"] + p["new_tokens"]
    shape = (p["batch"], max_len, p["kv_heads"], llama.head_dim(p))
    cdtype = tree["embed"].dtype
    zeros = lambda: jax.device_put(jnp.zeros(shape, cdtype), adapter.device)  # noqa: E731
    state = {"cache": [{"k": zeros(), "v": zeros()} for _ in range(p["layers"])]}

    def prefill_fn(params: Any, cache: Any, tokens: jax.Array) -> tuple[jax.Array, Any]:
        return llama.forward(ops, params, tokens, cache, 0, p)

    def decode_fn(params: Any, cache: Any, tokens: jax.Array, pos: jax.Array) -> tuple[jax.Array, Any]:
        return llama.forward(ops, params, tokens[:, None], cache, pos, p)

    compiled = adapter.compiled
    if compiled:
        prefill_fn, decode_fn = jax.jit(prefill_fn, donate_argnums=(1,)), jax.jit(decode_fn, donate_argnums=(1,))

    def prefill(tokens: jax.Array) -> jax.Array:
        logits, state["cache"] = prefill_fn(tree, state["cache"], tokens)
        return logits

    positions: dict[int, jax.Array] = {}

    def decode(tokens: jax.Array, pos: int) -> tuple[jax.Array, Any]:
        if pos not in positions:
            positions[pos] = jax.device_put(np.int32(pos), adapter.device)
        logits, state["cache"] = decode_fn(tree, state["cache"], tokens, positions[pos])
        return logits, state["cache"]  # the barrier waits for the logits and the new cache

    weights = dequant_fused_weights(bits, p["group"], dtype)
    return generation_prepared(
        adapter,
        dict(p),
        dtype,
        x["prompt"],
        prefill=prefill,
        decode=decode,
        logits_of=lambda out: out[0],
        put=lambda a: jax.device_put(np.asarray(a, dtype=np.int32), adapter.device),
        argmax=lambda logits: np.asarray(jnp.argmax(logits, axis=-1)),
        implementation=("jax.jit prefill + decode step, donated KV cache" if compiled else "eager JAX (op-by-op dispatch, no jax.jit around prefill or step), KV cache")
        + f" via lax.dynamic_update_slice, jax.nn.dot_product_attention (GQA); weights {weights}",
        mode=adapter.mode,
    )
