"""TensorFlow's `generate` (found by TensorFlowAdapter.prepare): a `tf.function`
prefill and a `tf.function` decode step in the compiled mode (XLA `jit_compile=True` where
the device has XLA; plain `tf.function` on Metal), the same Python functions run op by op
in the eager mode; the KV cache held in one `tf.Variable` per layer and
tensor, (B, L, Hkv, hd): prefill and decode both write it by `scatter_nd_update`
(prefill at every prompt position, decode at a traced one), so one compiled step serves every position. Attention is `keras.ops.dot_product_attention`
(TF has no fused SDPA: einsum → softmax → einsum; Keras repeats the KV heads for GQA),
decode attends over the whole cache with a length mask. Quantized weights: uint8 codes
dequantized in the same function as the matmul (ops.dequant_matmul).
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf

from bench.frameworks.base import Prepared
from bench.frameworks.generation import dequant_fused_weights, generation_prepared, quality_scorers, stored_codes, weight_bits
from bench.frameworks.tensorflow.ops import dequant_matmul
from workloads import llama


class TFLlamaOps:
    def __init__(self, p: Mapping[str, Any]) -> None:
        self.hd, self.eps, self.theta = llama.head_dim(p), llama.norm_eps(p), llama.rope_theta(p)

    def embed(self, table: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
        return tf.gather(table, tokens)

    def linear(self, x: tf.Tensor, w: Any) -> tf.Tensor:
        if isinstance(w, tuple):
            codes, scale, bias, bits = w
            lead = tf.shape(x)[:-1]
            y = dequant_matmul(tf.reshape(x, [-1, x.shape[-1]]), codes, scale, bias, bits)
            return tf.reshape(y, tf.concat([lead, [y.shape[-1]]], 0))
        return tf.linalg.matmul(x, w, transpose_b=True)

    def rms_norm(self, x: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
        xf = tf.cast(x, tf.float32)
        y = xf * tf.math.rsqrt(tf.reduce_mean(xf * xf, -1, keepdims=True) + self.eps) * tf.cast(g, tf.float32)
        return tf.cast(y, x.dtype)

    def silu(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.silu(x)

    def split_heads(self, x: tf.Tensor, heads: int) -> tf.Tensor:
        b, t = x.shape[0], x.shape[1]
        return tf.reshape(x, [b, t, heads, self.hd])  # (B, T, H, hd): keras.ops' layout

    def merge_heads(self, x: tf.Tensor) -> tf.Tensor:
        b, t, h, hd = x.shape
        return tf.reshape(x, [b, t, h * hd])

    def rope(self, x: tf.Tensor, pos: Any) -> tf.Tensor:
        t = x.shape[1]
        inv_freq = tf.constant(self.theta ** (-np.arange(0, self.hd, 2) / self.hd), tf.float32)
        ang = (tf.cast(pos, tf.float32) + tf.range(t, dtype=tf.float32))[:, None] * inv_freq[None, :]
        cos, sin = tf.cos(ang)[None, :, None, :], tf.sin(ang)[None, :, None, :]
        xf = tf.cast(x, tf.float32)
        x1, x2 = xf[..., : self.hd // 2], xf[..., self.hd // 2 :]
        return tf.cast(tf.concat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1), x.dtype)

    def attend(self, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, cache: Any, pos: Any) -> tuple[tf.Tensor, Any]:
        if cache is None:  # scoring a whole sequence from position 0 (quality rows): no cache to write
            return keras.ops.dot_product_attention(q, k, v, is_causal=True), None
        kc, vc = cache
        t = q.shape[1]
        if t > 1:  # prefill from position 0: causal attention over the new keys themselves
            # A scatter at every (b, 0..t-1), not the sliced assign `kc[:, :t].assign(k)`: that lowers to
            # ResourceStridedSliceAssign, which tensorflow-metal 1.2.0 does not register, and a resource
            # op must run with its GPU variable, so prefill failed on Metal. ResourceScatterNdUpdate is
            # registered (bench.frameworks.tensorflow.metal_kernels). The indices are a constant: no ops.
            at = tf.constant(np.stack(np.meshgrid(np.arange(q.shape[0]), np.arange(t), indexing="ij"), -1).astype(np.int32))
            kc.scatter_nd_update(at, k)
            vc.scatter_nd_update(at, v)
            return keras.ops.dot_product_attention(q, k, v, is_causal=True), cache
        # a sliced assign at a traced position would be an XLA compile-time constant
        # (one compilation per position); a scatter at (b, pos) is one program for all
        at = tf.stack([tf.range(q.shape[0]), tf.fill([q.shape[0]], tf.cast(pos, tf.int32))], axis=1)
        kc.scatter_nd_update(at, k[:, 0])
        vc.scatter_nd_update(at, v[:, 0])
        visible = tf.range(kc.shape[1])[None, None, None, :] <= pos  # (1, 1, 1, S)
        mask = tf.broadcast_to(visible, [q.shape[0], q.shape[2], 1, kc.shape[1]])
        return keras.ops.dot_product_attention(q, kc.read_value(), vc.read_value(), mask=mask), cache

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        return tf.cast(x, tf.float32)


def prepare_generate(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p)

    def build(name: str, flat: Mapping[str, np.ndarray]) -> Any:
        if name in flat:
            return adapter.asarray(flat[name], dtype)
        with tf.device(adapter.device):
            c = tf.constant(stored_codes(flat[name + ".q"], bits))
        return (c, adapter.asarray(flat[name + ".scale"], dtype), adapter.asarray(flat[name + ".bias"], dtype), bits)

    tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype))
    max_len = p["prompt"] + p["new_tokens"]
    shape = (p["batch"], max_len, p["kv_heads"], llama.head_dim(p))
    cdtype = tree["embed"].dtype
    with tf.device(adapter.device):
        caches = [(tf.Variable(tf.zeros(shape, cdtype)), tf.Variable(tf.zeros(shape, cdtype))) for _ in range(p["layers"])]
    ops = TFLlamaOps(p)
    compiled = adapter.compiled
    xla = compiled and adapter.backend != "metal"

    def prefill_fn(tokens: tf.Tensor) -> tf.Tensor:
        return llama.forward(ops, tree, tokens, caches, 0, p)[0]

    def decode_fn(tokens: tf.Tensor, pos: tf.Tensor) -> tf.Tensor:
        return llama.forward(ops, tree, tokens[:, None], caches, pos, p)[0]

    if compiled:
        prefill_fn, decode_fn = tf.function(prefill_fn, jit_compile=xla), tf.function(decode_fn, jit_compile=xla)
    else:  # op by op: pinned, so an op without a kernel on the device raises (TensorFlowAdapter.on_device)
        prefill_fn, decode_fn = adapter.on_device(prefill_fn), adapter.on_device(decode_fn)

    positions: dict[int, tf.Tensor] = {}

    def decode(tokens: tf.Tensor, pos: int) -> tf.Tensor:
        if pos not in positions:
            with tf.device(adapter.device):
                positions[pos] = tf.constant(pos, tf.int32)
        return decode_fn(tokens, positions[pos])

    def put(a: np.ndarray) -> tf.Tensor:
        with tf.device(adapter.device):
            return tf.constant(np.asarray(a, dtype=np.int32))

    how = "tf.function(jit_compile=True)" if xla else "tf.function (no XLA on Metal)" if compiled else "eager TF (op by op)"
    weights = dequant_fused_weights(bits, p["group"], dtype)
    return generation_prepared(
        adapter,
        dict(p),
        dtype,
        x["prompt"],
        prefill=prefill_fn,
        decode=decode,
        put=put,
        argmax=lambda logits: tf.argmax(logits, axis=-1).numpy(),
        implementation=f"{how} prefill + decode step, KV cache in tf.Variable (scatter_nd_update), keras.ops.dot_product_attention; weights {weights}",
        mode=adapter.mode,
        **quality_scorers(adapter, p, dtype, x, ops, tree, wrap=adapter.on_device),
    )

