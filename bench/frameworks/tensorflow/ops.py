"""TensorFlow's qmatmul, train_step and lora (found by TensorFlowAdapter.prepare).

qmatmul: TF has no weight-only kernel (Keras' `Dense.quantize` dequantizes, then runs a
plain matmul), so the codes are stored as uint8 (int4: two per byte) and dequantized in
the same `tf.function(jit_compile=True)` as the matmul, letting XLA fuse them
("dequant-fused"). On Metal, XLA is unavailable ("Could not find compiler for platform
METAL"), so there it is an unfused graph and the implementation says so.
Training: `tf.GradientTape` in a `tf.function`, compute dtype taken from Keras'
`mixed_bfloat16` policy object (fp32 variables, bf16 compute) — the policy object rather
than `set_global_policy`, which would leak into every later case in this worker — and
`keras.optimizers.AdamW`. LoRA adapters are hand-written variables; only they are
handed to the tape and the optimizer (Keras' `Dense.enable_lora` would also leave the
bias trainable and needs Keras layers, which this model does not use).
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf

from bench.frameworks.base import Prepared
from bench.frameworks.generation import stored_codes, weight_bits
from bench.frameworks.training import training_entry_points, training_prepared
from workloads import corpus, decoder, training


def dequant_matmul(x: tf.Tensor, codes: tf.Tensor, scale: tf.Tensor, bias: tf.Tensor, bits: int) -> tf.Tensor:
    if bits == 4:
        hi, lo = tf.bitwise.right_shift(codes, 4), tf.bitwise.bitwise_and(codes, 0x0F)
        codes = tf.reshape(tf.stack([hi, lo], axis=-1), [codes.shape[0], -1])
    n, k = codes.shape
    groups = scale.shape[1]
    q = tf.cast(tf.reshape(codes, [n, groups, k // groups]), tf.float32)
    w = q * tf.cast(scale, tf.float32)[..., None] + tf.cast(bias, tf.float32)[..., None]
    return tf.linalg.matmul(x, tf.cast(tf.reshape(w, [n, k]), x.dtype), transpose_b=True)


def prepare_qmatmul(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p, (4, 8))
    with tf.device(adapter.device):
        codes = tf.constant(stored_codes(x["q"], bits))
    xt, s, b = (adapter.asarray(x[n], dtype) for n in ("x", "scale", "bias"))
    fused = adapter.backend != "metal"
    fn = tf.function(lambda x, c, s, b: dequant_matmul(x, c, s, b, bits), jit_compile=fused)
    how = "dequant-fused: tf.function(jit_compile=True)" if fused else "dequant (unfused tf.function: no XLA on Metal)"
    return Prepared(lambda: fn(xt, codes, s, b), f"{how}, uint8 codes, int{bits} g{p['group']}")


class TFOps:
    """decoder.Ops for TensorFlow; `compute` comes from the mixed_bfloat16 policy."""

    def __init__(self, compute: str) -> None:
        self.compute = tf.as_dtype(compute)

    def embed(self, table: Any, tokens: tf.Tensor) -> tf.Tensor:
        return tf.gather(table, tokens)

    def linear(self, x: tf.Tensor, w: Any) -> tf.Tensor:
        return tf.linalg.matmul(tf.cast(x, self.compute), tf.cast(w, self.compute), transpose_b=True)

    def f32(self, x: tf.Tensor) -> tf.Tensor:
        return tf.cast(x, tf.float32)

    def layer_norm(self, x: tf.Tensor, g: Any, b: Any) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + decoder.LN_EPS) * g + b

    def gelu(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.gelu(x, approximate=False)

    def split_heads(self, x: tf.Tensor, heads: int) -> tf.Tensor:
        b, t, d = x.shape
        return tf.reshape(x, [b, t, heads, d // heads])  # keras.ops SDPA takes (B, T, H, D)

    def merge_heads(self, x: tf.Tensor) -> tf.Tensor:
        b, t, h, dh = x.shape
        return tf.reshape(x, [b, t, h * dh])

    def attention(self, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
        return keras.ops.dot_product_attention(q, k, v, is_causal=True)

    def cross_entropy(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))


def prepare_training(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], lora: bool) -> Prepared:
    policy = keras.mixed_precision.Policy("mixed_bfloat16")
    with tf.device(adapter.device):
        var = lambda name: tf.Variable(np.asarray(x[name], dtype=np.float32), name=name.replace(".", "_"))  # noqa: E731
        base_flat = {k: var(k) for k in decoder.shapes(p, corpus.VOCAB)}
        lora_flat = {k: var(k) for k in decoder.lora_shapes(p)} if lora else {}
        tokens = tf.constant(np.asarray(x["tokens"], dtype=np.int32))
    tree = decoder.nest(base_flat, p["layers"])
    if lora:
        tree = decoder.attach_lora(tree, decoder.nest_lora(lora_flat, p["layers"]))
    trainable = list((lora_flat or base_flat).values())
    ops, heads, scale = TFOps(policy.compute_dtype), p["heads"], training.lora_scale(p)
    o = decoder.OPTIMIZER
    opt = keras.optimizers.AdamW(
        learning_rate=p["lr"], weight_decay=o["weight_decay"], beta_1=o["beta1"], beta_2=o["beta2"], epsilon=o["eps"]
    )
    opt.build(trainable)

    def step_fn(inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = decoder.loss(ops, tree, inputs, targets, heads, scale)
        opt.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
        return loss

    compiled = adapter.compiled
    xla = compiled and adapter.backend != "metal"  # "Could not find compiler for platform METAL"
    if compiled:
        step_fn = tf.function(step_fn, jit_compile=xla, reduce_retracing=True)
    else:  # op by op: pinned, so an op without a kernel on the device raises (TensorFlowAdapter.on_device)
        step_fn = adapter.on_device(step_fn)
    how = "tf.function(jit_compile=True, GradientTape)" if xla else "tf.function(GradientTape, no XLA on Metal)" if compiled else "eager TF (GradientTape op by op)"

    batches = [decoder.split_batch(tokens[i]) for i in range(tokens.shape[0])]

    def frozen() -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in base_flat.items()}

    return training_prepared(
        lambda i: step_fn(*batches[i]),
        loss_of=lambda out: float(out.numpy()),
        steps=p["steps"],
        implementation=f"{how} + keras.optimizers.AdamW, policy {policy.name} "
        f"({policy.variable_dtype} variables, {policy.compute_dtype} compute)"
        + ("; hand-written LoRA variables, only they trained" if lora else ""),
        trainable_params=sum(int(np.prod(v.shape)) for v in trainable),
        frozen=frozen if lora else None,
        mode=adapter.mode,
    )


prepare_train_step, prepare_lora = training_entry_points(prepare_training)
