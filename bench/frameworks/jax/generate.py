"""JAX's `generate` (found by JaxAdapter.prepare): in the compiled mode a
jitted prefill and a jitted decode step (in the eager mode the same functions, dispatched
op by op: JAX's eager execution, where each primitive is its own small compiled
computation and nothing fuses across them), each taking the KV cache as a donated argument and returning it
updated with `lax.dynamic_update_slice` (in place where the backend honours donation;
XLA:CPU does not and copies). The cache is preallocated (B, L, Hkv, hd) in JAX's SDPA
layout; decode attends over the whole cache with `key_value_seq_lengths` = pos+1, so
one compiled step serves every position (the position is a traced scalar). The step also
takes its greedy pick (argmax) in the same jitted call: the timed step, the check and
greedy generation all run that one function, and generation feeds the picks to the next
step on the device (only the read-back crosses to the host). Attention is
`jax.nn.dot_product_attention` (native GQA). Quantized weights: uint8 codes (int4: two
per byte) dequantized inside the same jit as the dot (ops.dequant_matmul),
as JAX has no weight-only kernel.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.frameworks.base import Prepared, Skipped
from bench.frameworks.generation import dequant_fused_weights, generation_prepared, quality_scorers, stored_codes, weight_bits
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
        if cache is None:  # scoring a whole sequence (no cache kept)
            return jax.nn.dot_product_attention(q, k, v, is_causal=True), None
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


EAGER_CASE_BUDGET_S = 60.0
"""An eager case whose estimated run (from a small shape measured in the same process) is
longer than this is skipped before it starts: op-by-op JAX at Qwen2.5-0.5B's shape ran
past a 200 s case limit on the H200 and took the run's remaining time with it."""


class _Model:
    """One built model: its prefill and decode step (jitted in the compiled mode) over a
    donated, preallocated cache held in `state`."""

    def __init__(self, adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], compiled: bool) -> None:
        bits = weight_bits(p)

        def build(name: str, flat: Mapping[str, np.ndarray]) -> Any:
            if name in flat:
                return adapter.asarray(flat[name], dtype)
            return {"codes": jax.device_put(stored_codes(flat[name + ".q"], bits), adapter.device), "scale": adapter.asarray(flat[name + ".scale"], dtype),
                    "bias": adapter.asarray(flat[name + ".bias"], dtype)}  # fmt: skip

        self.p, self.adapter, self.bits = p, adapter, bits
        self.tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype))
        self.ops = ops = JaxLlamaOps(p)
        max_len = p["prompt"] + p["new_tokens"]
        shape = (p["batch"], max_len, p["kv_heads"], llama.head_dim(p))
        cdtype = self.tree["embed"].dtype
        zeros = lambda: jax.device_put(jnp.zeros(shape, cdtype), adapter.device)  # noqa: E731
        self.state = {"cache": [{"k": zeros(), "v": zeros()} for _ in range(p["layers"])]}

        def prefill_fn(params: Any, cache: Any, tokens: jax.Array) -> tuple[jax.Array, Any]:
            return llama.forward(ops, params, tokens, cache, 0, p)

        def step_fn(params: Any, cache: Any, tokens: jax.Array, pos: jax.Array) -> tuple[jax.Array, jax.Array, Any]:
            """One decode step and its greedy pick in one computation: the timed step, the
            check and greedy generation all run this one compiled function (the argmax of
            one row of logits is noise beside the step; a second jit compiled it twice)."""
            logits, cache = llama.forward(ops, params, tokens[:, None], cache, pos, p)
            return logits, jnp.argmax(logits, axis=-1).astype(tokens.dtype), cache

        if compiled:
            prefill_fn, step_fn = jax.jit(prefill_fn, donate_argnums=(1,)), jax.jit(step_fn, donate_argnums=(1,))
        self.prefill_fn, self.step_fn = prefill_fn, step_fn
        self.positions: dict[int, jax.Array] = {}

    def prefill(self, tokens: jax.Array) -> jax.Array:
        logits, self.state["cache"] = self.prefill_fn(self.tree, self.state["cache"], tokens)
        return logits

    def _step(self, tokens: jax.Array, pos: int) -> tuple[jax.Array, jax.Array]:
        if pos not in self.positions:
            self.positions[pos] = jax.device_put(np.int32(pos), self.adapter.device)
        logits, picks, self.state["cache"] = self.step_fn(self.tree, self.state["cache"], tokens, self.positions[pos])
        return logits, picks

    def decode(self, tokens: jax.Array, pos: int) -> tuple[jax.Array, Any]:
        logits, _ = self._step(tokens, pos)
        return logits, self.state["cache"]  # the barrier waits for the logits and the new cache

    def step_greedy(self, tokens: jax.Array, pos: int) -> jax.Array:
        """Decode + argmax in one compiled call; the picks stay on the device for the next step."""
        return self._step(tokens, pos)[1]

    def put(self, a: np.ndarray) -> jax.Array:
        return jax.device_put(np.asarray(a, dtype=np.int32), self.adapter.device)


def scanned_forward(ops: JaxLlamaOps, tree: Mapping[str, Any], tokens: jax.Array, p: Mapping[str, Any], scored_from: int | None = None) -> jax.Array:
    """The uncached forward of the checks (cache vs recompute, the quantized rows' scorers)
    with its blocks under `lax.scan` over the layers' weights stacked: XLA compiles one
    block instead of every layer unrolled, and these forwards run once or twice per row,
    untimed, each at a sequence length of its own (on the H200 each unrolled 24-layer
    compile cost 6-10 s). The stack is a copy of the blocks' weights for the call's
    duration, made after the row's peak memory is read. The timed prefill and decode step
    stay unrolled: that is how the row's figures are meant (and fastest)."""
    h = ops.embed(tree["embed"], tokens)
    stacked = jax.tree.map(lambda *layers: jnp.stack(layers), *tree["blocks"])
    h, _ = jax.lax.scan(lambda h, weights: (llama.block(ops, weights, h, None, 0, p)[0], None), h, stacked)
    return llama.head(ops, tree, h, scored_from)


def prepare_generate(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    compiled = adapter.compiled  # eager at a large shape was skipped before (JaxAdapter.check_case_budget)
    model = _Model(adapter, p, dtype, x, compiled)
    weights = dequant_fused_weights(model.bits, p["group"], dtype)
    recompute = jax.jit(lambda tree, tokens: scanned_forward(model.ops, tree, tokens, p))
    return generation_prepared(
        adapter,
        dict(p),
        dtype,
        x["prompt"],
        prefill=model.prefill,
        decode=model.decode,
        logits_of=lambda out: out[0],
        put=model.put,
        argmax=lambda logits: np.asarray(jnp.argmax(logits, axis=-1)),
        implementation=("jax.jit prefill + decode step, donated KV cache" if compiled else "eager JAX (op-by-op dispatch, no jax.jit around prefill or step), KV cache")
        + f" via lax.dynamic_update_slice, jax.nn.dot_product_attention (GQA); weights {weights}",
        mode=adapter.mode,
        **({"step_greedy": model.step_greedy, "to_host": np.asarray} if compiled else {}),
        recompute=lambda tokens: recompute(model.tree, tokens),
        **quality_scorers(adapter, p, dtype, x, model.ops, model.tree, wrap=jax.jit, forward=scanned_forward),
    )


_PROBES: dict[str, tuple[float, float]] = {}
"""dtype -> the probe's (first-use compile s, s per token) at batch 1, measured once per
process: a second probe would find its primitives compiled already (and under-state the
first-use cost), and each cost ~12 s on the H200's first call. A larger batch computes at
least as much per token, so batch 1's figures bound every batch's estimate from below."""


def _probe(adapter: Any, small: Mapping[str, Any], dtype: str) -> tuple[float, float]:
    """The small shape op by op: its first prefill + step (every primitive compiled on first
    use), then the steady time per token over 8 steps."""
    model = _Model(adapter, small, dtype, llama.init(small, np.random.default_rng(0)), compiled=False)
    tokens = model.put(np.zeros((small["batch"], small["prompt"]), np.int64))
    step = model.put(np.zeros((small["batch"],), np.int64))
    t0 = time.perf_counter()
    adapter.barrier(model.prefill(tokens))
    adapter.barrier(model.decode(step, small["prompt"]))
    first_s = time.perf_counter() - t0
    steps = 8
    t0 = time.perf_counter()
    for i in range(steps):
        adapter.barrier(model.decode(step, small["prompt"] + 1 + i % (small["new_tokens"] - 1)))
    return first_s, (time.perf_counter() - t0) / steps


def skip_eager_if_too_long(adapter: Any, p: Mapping[str, Any], dtype: str) -> None:
    """Skipped, before anything of the case is built, when op-by-op JAX would need longer
    than EAGER_CASE_BUDGET_S: measured on a small shape in this process (its first step:
    every primitive compiled on first use; then the steady time per token), scaled to
    the case's layers and to the steps the case runs. A lower bound: the case's larger
    shapes compile their primitives again and compute more per op."""
    from bench.frameworks.generation import GENERATE_REPEATS, PREFILL_REPEATS
    from workloads.generate import tiny

    small = tiny()  # dense: a quantized step adds its dequantization, so this is a lower bound there too
    if all(p[k] <= small[k] for k in ("layers", "d_model", "ffn", "vocab", "prompt")):
        return  # the model and prompt are no bigger than the probe's: it runs
    if dtype not in _PROBES:  # batch 1 bounds every batch from below: one probe per process and dtype
        _PROBES[dtype] = _probe(adapter, small, dtype)
    first_s, per_token_small = _PROBES[dtype]
    per_token = per_token_small * p["layers"] / small["layers"]
    # whole generations (checked one + the repeats), prefills (context, check, pp, TTFT) and the timed steps' floor
    tokens_needed = p["new_tokens"] * (GENERATE_REPEATS + 1) + 2 * PREFILL_REPEATS + 3 + 50
    estimate = first_s + per_token * tokens_needed
    if estimate > EAGER_CASE_BUDGET_S:
        raise Skipped(
            f"op-by-op JAX would need >= {estimate:.0f} s for this case (budget {EAGER_CASE_BUDGET_S:g} s; a lower bound): measured in this "
            f"process on a dense {small['layers']}-layer shape, {first_s:.1f} s of first-use compiles and {per_token_small * 1e3:.2f} ms per token, "
            f"i.e. ~{per_token * 1e3:.0f} ms per token at {p['layers']} layers x {tokens_needed} steps; the compiled mode (jax.jit) runs it"
        )
