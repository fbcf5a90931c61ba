"""A small decoder-only transformer, defined once for every framework and the reference.

The model is written a single time, in `loss`, against a tiny set of primitives (`Ops`):
each adapter supplies its framework's fastest idiomatic primitive for each (fused SDPA,
fused layer norm, ...), and `NumpyOps` supplies float64 ones for the reference. So the
architecture cannot drift between frameworks, and no adapter copies another.

Mixed precision is part of the definition, the same everywhere (torch autocast's
convention): matmul operands and SDPA in the compute dtype (bf16), with the matmul's
output kept in it; the residual stream, layer norms, softmax cross-entropy and the
master weights in fp32. `Ops.f32` marks each place a bf16 value joins the fp32 stream.

Parameters are a nested dict ("tree"): embed (V, D), pos (T, D), blocks[i] with
wq/wk/wv/wo (D, D), w_up (F, D), w_down (D, F), ln1_g/ln1_b/ln2_g/ln2_b (D,), then
lnf_g/lnf_b and head (V, D). Linear weights are (out, in): y = x·Wᵀ, as nn.Linear.
LoRA adapters on the attention projections live in blocks[i]["lora_wq"] = {"a": (r, in),
"b": (out, r)}, scaled by alpha/r as peft does.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np
from scipy.special import erf

from workloads.base import Params

LN_EPS = 1e-5
BLOCK_KEYS = ("ln1_g", "ln1_b", "wq", "wk", "wv", "wo", "ln2_g", "ln2_b", "w_up", "w_down")
LORA_TARGETS = ("wq", "wv")  # peft's usual choice for attention: query and value
# One AdamW for every framework, every argument explicit: their defaults differ
# (weight decay 0.01 torch/MLX, 1e-4 optax, 0.004 Keras; eps 1e-7 Keras; MLX skips bias
# correction unless asked). The learning rate is a case parameter (`lr`).
OPTIMIZER = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
N_BATCHES = 4  # distinct batches a run cycles through


class Ops(Protocol):
    def embed(self, table: Any, tokens: Any) -> Any: ...
    def linear(self, x: Any, w: Any) -> Any: ...  # x·wᵀ in the compute dtype
    def f32(self, x: Any) -> Any: ...
    def layer_norm(self, x: Any, g: Any, b: Any) -> Any: ...  # fp32
    def gelu(self, x: Any) -> Any: ...  # exact (erf) GELU
    def split_heads(self, x: Any, heads: int) -> Any: ...  # (B, T, D) -> the layout `attention` takes
    def merge_heads(self, x: Any) -> Any: ...
    def attention(self, q: Any, k: Any, v: Any) -> Any: ...  # causal SDPA, scale 1/sqrt(head_dim)
    def cross_entropy(self, logits: Any, targets: Any) -> Any: ...  # mean over all tokens, fp32


def _projection(ops: Ops, x: Any, block: Mapping[str, Any], name: str, lora_scale: float) -> Any:
    y = ops.linear(x, block[name])
    adapter = block.get("lora_" + name)
    if adapter is not None:
        y = y + ops.linear(ops.linear(x, adapter["a"]), adapter["b"]) * lora_scale
    return y


def loss(ops: Ops, tree: Mapping[str, Any], inputs: Any, targets: Any, heads: int, lora_scale: float = 1.0) -> Any:
    """Mean next-token cross-entropy of the decoder on one batch."""
    h = ops.embed(tree["embed"], inputs) + tree["pos"]
    for block in tree["blocks"]:
        a = ops.layer_norm(h, block["ln1_g"], block["ln1_b"])
        q, k, v = (ops.split_heads(_projection(ops, a, block, n, lora_scale), heads) for n in ("wq", "wk", "wv"))
        h = h + ops.f32(ops.linear(ops.merge_heads(ops.attention(q, k, v)), block["wo"]))
        m = ops.layer_norm(h, block["ln2_g"], block["ln2_b"])
        h = h + ops.f32(ops.linear(ops.gelu(ops.linear(m, block["w_up"])), block["w_down"]))
    logits = ops.linear(ops.layer_norm(h, tree["lnf_g"], tree["lnf_b"]), tree["head"])
    return ops.cross_entropy(ops.f32(logits), targets)


# -- shapes and initialisation ---------------------------------------------------------
def shapes(p: Params, vocab: int) -> dict[str, tuple[int, ...]]:
    """Flat parameter names ("blocks.0.wq") and shapes of the base model."""
    d, f = p["d_model"], 4 * p["d_model"]
    out = {"embed": (vocab, d), "pos": (p["seq"], d)}
    for i in range(p["layers"]):
        block = {"ln1_g": (d,), "ln1_b": (d,), "wq": (d, d), "wk": (d, d), "wv": (d, d), "wo": (d, d)}
        block.update({"ln2_g": (d,), "ln2_b": (d,), "w_up": (f, d), "w_down": (d, f)})
        out.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    out.update({"lnf_g": (d,), "lnf_b": (d,), "head": (vocab, d)})
    return out


def lora_shapes(p: Params) -> dict[str, tuple[int, ...]]:
    d, r = p["d_model"], p["lora_rank"]
    out = {}
    for i in range(p["layers"]):
        for t in LORA_TARGETS:
            out[f"lora.{i}.{t}.a"] = (r, d)
            out[f"lora.{i}.{t}.b"] = (d, r)
    return out


def init(p: Params, vocab: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Embeddings N(0, 1), linear weights N(0, 1/in) (residual projections further
    scaled by 1/sqrt(2·layers)), LN = (1, 0). Deliberately larger than GPT-2's N(0, 0.02):
    the logits start O(1), so the first-step loss depends on every layer and a wrong
    attention or MLP moves it by percents (with 0.02 it would sit at ln V whatever the
    layers computed, and the reference check would witness nothing)."""
    out = {}
    for name, shape in shapes(p, vocab).items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.endswith("_g"):
            out[name] = np.ones(shape)
        elif leaf.endswith("_b"):
            out[name] = np.zeros(shape)
        elif leaf in ("embed", "pos"):
            out[name] = rng.normal(0.0, 1.0 if leaf == "embed" else 0.3, size=shape)
        else:
            std = 1.0 / np.sqrt(shape[1])
            out[name] = rng.normal(0.0, std / np.sqrt(2 * p["layers"]) if leaf in ("wo", "w_down") else std, size=shape)
    return out


def init_lora(p: Params, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A ~ N(0, 1/in) as Kaiming; B small but NOT zero (peft starts B at zero), so the
    first-step loss check exercises the adapter path instead of skipping it."""
    out = {}
    for name, shape in lora_shapes(p).items():
        std = 1.0 / np.sqrt(shape[1]) if name.endswith(".a") else 0.02
        out[name] = rng.normal(0.0, std, size=shape)
    return out


def nest(flat: Mapping[str, Any], layers: int) -> dict[str, Any]:
    """Flat names → the tree `loss` reads; values are passed through untouched, so the
    same function nests NumPy arrays, tensors, variables or modules."""
    tree: dict[str, Any] = {k: v for k, v in flat.items() if "." not in k}
    tree["blocks"] = [{k: flat[f"blocks.{i}.{k}"] for k in BLOCK_KEYS} for i in range(layers)]
    return tree


def nest_lora(flat: Mapping[str, Any], layers: int) -> list[dict[str, Any]]:
    return [{t: {"a": flat[f"lora.{i}.{t}.a"], "b": flat[f"lora.{i}.{t}.b"]} for t in LORA_TARGETS} for i in range(layers)]


def attach_lora(tree: Mapping[str, Any], adapters: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The base tree with each block's adapters added as lora_<target> (a new dict; the
    inputs are not modified, so frameworks can differentiate w.r.t. `adapters` only)."""
    blocks = [{**block, **{f"lora_{t}": ad[t] for t in ad}} for block, ad in zip(tree["blocks"], adapters)]
    return {**tree, "blocks": blocks}


def split_batch(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return tokens[..., :-1], tokens[..., 1:]


# -- FLOPs ------------------------------------------------------------------------------
def forward_flops(p: Params, vocab: int) -> tuple[float, float]:
    """(matmul FLOPs of the linear layers, attention FLOPs) of one forward pass; causal
    attention counts half the score matrix, as workloads.sdpa does."""
    tokens = p["batch"] * p["seq"]
    d = p["d_model"]
    linear_params = p["layers"] * (4 * d * d + 2 * 4 * d * d) + vocab * d
    attention = p["layers"] * 4.0 * p["batch"] * p["seq"] * p["seq"] * d / 2
    return 2.0 * tokens * linear_params, attention


def lora_forward_flops(p: Params) -> float:
    return 2.0 * p["batch"] * p["seq"] * sum(np.prod(s) for s in lora_shapes(p).values())


# -- the float64 reference -------------------------------------------------------------
class NumpyOps:
    """float64 primitives: the reference the adapters' first-step losses are checked against."""

    def embed(self, table: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return table[np.asarray(tokens, dtype=np.int64)]

    def linear(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x @ w.T

    def f32(self, x: np.ndarray) -> np.ndarray:
        return x

    def layer_norm(self, x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + LN_EPS) * g + b

    def gelu(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))

    def split_heads(self, x: np.ndarray, heads: int) -> np.ndarray:
        b, t, d = x.shape
        return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)

    def merge_heads(self, x: np.ndarray) -> np.ndarray:
        b, h, t, dh = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)

    def attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = q.shape[-2]
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        scores = np.where(np.tril(np.ones((t, t), dtype=bool)), scores, -np.inf)
        scores -= scores.max(-1, keepdims=True)
        w = np.exp(scores)
        return (w / w.sum(-1, keepdims=True)) @ v

    def cross_entropy(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        picked = np.take_along_axis(logp, np.asarray(targets, dtype=np.int64)[..., None], axis=-1)
        return -picked.mean()
