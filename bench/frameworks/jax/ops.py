"""JAX's qmatmul, train_step and lora (found by JaxAdapter.prepare).

JAX has no weight-only matmul kernel, so qmatmul stores the codes as uint8 (int4: two
per byte, workloads.quant.pack_nibbles) and dequantizes inside the same `jax.jit` as
the dot, where XLA can fuse the unpack/scale into the matmul's operand read
(implementation "dequant-fused"). Training is `jax.value_and_grad` + `optax.adamw` in
one jitted step with the parameter and optimizer buffers donated; LoRA differentiates
only the adapter tree (the base is a non-differentiated argument).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.generation import stored_codes, weight_bits
from bench.frameworks.training import training_entry_points, training_prepared
from workloads import corpus, decoder, training

try:
    import optax
except ImportError:  # recorded per case: the rest of the adapter still works
    optax = None


def _unpack_nibbles(packed: jax.Array) -> jax.Array:
    hi, lo = packed >> 4, packed & 0x0F
    return jnp.stack([hi, lo], axis=-1).reshape(packed.shape[0], -1)


def dequant_matmul(x: jax.Array, codes: jax.Array, scale: jax.Array, bias: jax.Array, bits: int) -> jax.Array:
    """x·(q·scale + bias)ᵀ; the dequantized weight is formed in fp32, rounded once to
    x's dtype, and never leaves the fused computation."""
    q = _unpack_nibbles(codes) if bits == 4 else codes
    n, k = q.shape
    groups = scale.shape[1]
    w = q.reshape(n, groups, k // groups).astype(jnp.float32) * scale[..., None].astype(jnp.float32) + bias[..., None].astype(jnp.float32)
    return x @ w.reshape(n, k).astype(x.dtype).T


def prepare_qmatmul(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p, (4, 8))
    codes = jax.device_put(stored_codes(x["q"], bits), adapter.device)
    xj, s, b = (adapter.asarray(x[n], dtype) for n in ("x", "scale", "bias"))
    fn = jax.jit(partial(dequant_matmul, bits=bits))
    return Prepared(lambda: fn(xj, codes, s, b), f"dequant-fused: jax.jit(unpack uint8 codes, scale, dot), int{bits} g{p['group']}")


class JaxOps:
    """decoder.Ops for JAX: explicit bf16 casts at matmuls; JAX's (B, T, H, D) SDPA layout."""

    compute = jnp.bfloat16

    def embed(self, table: jax.Array, tokens: jax.Array) -> jax.Array:
        return jnp.take(table, tokens, axis=0)

    def linear(self, x: jax.Array, w: jax.Array) -> jax.Array:
        return x.astype(self.compute) @ w.astype(self.compute).T

    def f32(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.float32)

    def layer_norm(self, x: jax.Array, g: jax.Array, b: jax.Array) -> jax.Array:
        mu = x.mean(-1, keepdims=True)
        var = jnp.square(x - mu).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + decoder.LN_EPS) * g + b

    def gelu(self, x: jax.Array) -> jax.Array:
        return jax.nn.gelu(x, approximate=False)

    def split_heads(self, x: jax.Array, heads: int) -> jax.Array:
        b, t, d = x.shape
        return x.reshape(b, t, heads, d // heads)

    def merge_heads(self, x: jax.Array) -> jax.Array:
        b, t, h, dh = x.shape
        return x.reshape(b, t, h * dh)

    def attention(self, q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
        return jax.nn.dot_product_attention(q, k, v, is_causal=True)

    def cross_entropy(self, logits: jax.Array, targets: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def prepare_training(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], lora: bool) -> Prepared:
    if optax is None:
        raise Unsupported("optax is not installed (pip install 'metalbench[jax]')")
    put = lambda a: jax.device_put(jnp.asarray(np.asarray(a, dtype=np.float32)), adapter.device)  # noqa: E731
    base = decoder.nest({k: put(x[k]) for k in decoder.shapes(p, corpus.VOCAB)}, p["layers"])
    adapters = decoder.nest_lora({k: put(x[k]) for k in decoder.lora_shapes(p)}, p["layers"]) if lora else None
    ops, heads, scale = JaxOps(), p["heads"], training.lora_scale(p)
    o = decoder.OPTIMIZER
    tx = optax.adamw(p["lr"], b1=o["beta1"], b2=o["beta2"], eps=o["eps"], weight_decay=o["weight_decay"])

    def loss_fn(trainable: Any, frozen: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array:
        tree = decoder.attach_lora(frozen, trainable) if lora else trainable
        return decoder.loss(ops, tree, inputs, targets, heads, scale)

    def step_fn(trainable: Any, opt_state: Any, frozen: Any, inputs: jax.Array, targets: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(trainable, frozen, inputs, targets)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    compiled = adapter.compiled
    if compiled:
        step_fn = jax.jit(step_fn, donate_argnums=(0, 1))
    trainable, frozen = (adapters, base) if lora else (base, None)
    state = {"params": trainable, "opt": tx.init(trainable)}
    tokens = np.asarray(x["tokens"], dtype=np.int32)
    batches = [tuple(jax.device_put(a, adapter.device) for a in decoder.split_batch(tokens[i])) for i in range(tokens.shape[0])]

    def step(i: int) -> tuple[jax.Array, Any]:
        state["params"], state["opt"], loss = step_fn(state["params"], state["opt"], frozen, *batches[i])
        return loss, state["params"]  # the barrier waits for the loss and the updated parameters

    def frozen_now() -> dict[str, np.ndarray]:
        return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(base)}

    return training_prepared(
        step,
        loss_of=lambda out: float(out[0]),
        checked=lambda out: out[0],
        steps=p["steps"],
        implementation=("jax.jit(value_and_grad + optax.adamw, donated buffers)" if compiled else "eager JAX (value_and_grad + optax.adamw dispatched op by op, no jax.jit around the step)")
        + ", bf16 casts per matmul"
        + ("; hand-written LoRA, grads w.r.t. the adapter tree only" if lora else ""),
        trainable_params=sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(trainable)),
        frozen=frozen_now if lora else None,
        mode=adapter.mode,
    )


prepare_train_step, prepare_lora = training_entry_points(prepare_training)
