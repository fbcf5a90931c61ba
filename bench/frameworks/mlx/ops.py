"""MLX's qmatmul, train_step and lora (found by MLXAdapter.prepare).

Quantized matmul is MLX's native `mx.quantized_matmul` on the shared codes, packed into
MLX's uint32 layout (workloads.quant.pack_uint32) rather than re-quantized with
`mx.quantize`, whose own rounding would give MLX different weights than everyone else.
Training keeps fp32 master weights and casts to bf16 at each matmul (MLX has no
autocast), differentiates with `nn.value_and_grad`, steps `optim.AdamW` with bias
correction (MLX's default leaves it off, unlike every other framework), and compiles the
whole step with `mx.compile`, capturing model and optimizer state (not on mlx-cpu, where
compiling means running a C++ compiler for tens of seconds). LoRA is plain MLX:
the base tree frozen with `Module.freeze`, adapters as a second, trainable tree.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.training import training_entry_points, training_prepared
from workloads import corpus, decoder, quant, training

_MLX_GROUPS = (32, 64, 128)


def prepare_qmatmul(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits, group, scale, bias = p["bits"], p["group"], x["scale"], x["bias"]
    if bits not in (2, 3, 4, 5, 6, 8):
        raise Unsupported(f"mx.quantized_matmul has no {bits}-bit affine mode")
    if group not in _MLX_GROUPS:  # per-channel: the same scale repeated in groups of 64 (exact)
        scale, bias, group = quant.expand_groups(scale, p["k"], 64), quant.expand_groups(bias, p["k"], 64), 64
    xm = adapter.asarray(x["x"], dtype)
    wq = mx.array(quant.pack_uint32(np.asarray(x["q"]), bits))
    s, b = adapter.asarray(scale, dtype), adapter.asarray(bias, dtype)
    mx.eval(wq)
    return Prepared(
        lambda: mx.quantized_matmul(xm, wq, s, b, transpose=True, group_size=group, bits=bits),
        f"mx.quantized_matmul (affine int{bits}, g{group})",
    )


class MLXOps:
    """decoder.Ops for MLX: bf16 matmuls/SDPA on fp32 masters, fused layer norm."""

    compute = mx.bfloat16

    def embed(self, table: mx.array, tokens: mx.array) -> mx.array:
        return table[tokens]

    def linear(self, x: mx.array, w: mx.array) -> mx.array:
        return x.astype(self.compute) @ w.astype(self.compute).T

    def f32(self, x: mx.array) -> mx.array:
        return x.astype(mx.float32)

    def layer_norm(self, x: mx.array, g: mx.array, b: mx.array) -> mx.array:
        return mx.fast.layer_norm(x, g, b, decoder.LN_EPS)

    def gelu(self, x: mx.array) -> mx.array:
        return nn.gelu(x)

    def split_heads(self, x: mx.array, heads: int) -> mx.array:
        b, t, d = x.shape
        return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)

    def merge_heads(self, x: mx.array) -> mx.array:
        b, h, t, dh = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)

    def attention(self, q: mx.array, k: mx.array, v: mx.array) -> mx.array:
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=q.shape[-1] ** -0.5, mask="causal")

    def cross_entropy(self, logits: mx.array, targets: mx.array) -> mx.array:
        return nn.losses.cross_entropy(logits, targets, reduction="mean")


class _Model(nn.Module):
    """The decoder's parameter trees as an nn.Module (what nn.value_and_grad and
    optimizer.update take): `base` always, `lora` adapters when fine-tuning."""

    def __init__(self, base: dict[str, Any], lora: list[dict[str, Any]] | None) -> None:
        super().__init__()
        self.base = base
        if lora is not None:
            self.lora = lora

    def tree(self) -> dict[str, Any]:
        return decoder.attach_lora(self.base, self.lora) if "lora" in self else self.base


def prepare_training(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], lora: bool) -> Prepared:
    as_mx = lambda a: mx.array(np.asarray(a, dtype=np.float32))  # noqa: E731
    base = decoder.nest({k: as_mx(x[k]) for k in decoder.shapes(p, corpus.VOCAB)}, p["layers"])
    adapters = decoder.nest_lora({k: as_mx(x[k]) for k in decoder.lora_shapes(p)}, p["layers"]) if lora else None
    model = _Model(base, adapters)
    if lora:
        model.freeze(keys=["base"])
    ops, heads, scale = MLXOps(), p["heads"], training.lora_scale(p)

    def loss_fn(m: _Model, inputs: mx.array, targets: mx.array) -> mx.array:
        return decoder.loss(ops, m.tree(), inputs, targets, heads, scale)

    o = decoder.OPTIMIZER
    opt = optim.AdamW(p["lr"], betas=[o["beta1"], o["beta2"]], eps=o["eps"], weight_decay=o["weight_decay"], bias_correction=True)
    opt.init(model.trainable_parameters())
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    state = [model.state, opt.state]

    def step_fn(inputs: mx.array, targets: mx.array) -> mx.array:
        loss, grads = loss_and_grad(model, inputs, targets)
        opt.update(model, grads)
        return loss

    # On mlx-cpu, mx.compile generates C++ and runs the system compiler: ~30 s for this
    # step on a 2-core machine, more than the step costs in a whole quick suite
    # (MLXAdapter.slow_compile: the quick suite skips it there, the full suite runs it).
    compiled = adapter.compiled
    if compiled:
        step_fn = partial(mx.compile, inputs=state, outputs=state)(step_fn)

    tokens = mx.array(np.asarray(x["tokens"], dtype=np.int32))
    batches = [decoder.split_batch(tokens[i]) for i in range(tokens.shape[0])]
    mx.eval(model.parameters(), opt.state, batches)

    def step(i: int) -> tuple[mx.array, list[Any]]:
        return step_fn(*batches[i]), state  # the barrier evaluates the loss and the new state

    def frozen() -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in tree_flatten(model.base)}

    return training_prepared(
        step,
        loss_of=lambda out: float(out[0].item()),
        checked=lambda out: out[0],
        steps=p["steps"],
        implementation=("mx.compile" if compiled else "eager (lazy graph per step)")
        + ": nn.value_and_grad + optim.AdamW, fp32 masters cast to bf16 per matmul"
        + ("; plain-MLX LoRA (base frozen via Module.freeze)" if lora else ""),
        trainable_params=sum(v.size for _, v in tree_flatten(model.trainable_parameters())),
        frozen=frozen if lora else None,
        mode=adapter.mode,
    )


prepare_train_step, prepare_lora = training_entry_points(prepare_training)
