"""A Llama-style decoder for inference, defined once for every framework and the reference.

Same approach as workloads.decoder (the training model): the forward pass is written a
single time, in `forward`, against a small set of primitives (`Ops`); each adapter
supplies its framework's idiomatic fast primitive (fused SDPA with grouped-query heads,
fused RMSNorm and RoPE where the framework has them, a KV cache updated the framework's
way) and `NumpyOps` supplies float64 ones for the reference. The architecture is the
Llama/Qwen2 family's: token embedding, pre-RMSNorm, rotary position embedding
(rotate-half convention, as HF `LlamaRotaryEmbedding` and `mx.fast.rope(traditional=False)`),
grouped-query attention (`heads` query heads share `kv_heads` key/value heads), a SwiGLU
MLP, a final RMSNorm and the LM head (optionally tied to the embedding, as Qwen2.5-0.5B).
Qwen2's q/k/v biases are left out (Llama has none).

Weights are a nested dict ("tree"): embed (V, D), norm (D,), head (V, D) [absent when
tied and unquantized], blocks[i] with attn_norm, mlp_norm (D,), wq (H·hd, D),
wk/wv (Hkv·hd, D), wo (D, H·hd), w_gate/w_up (F, D), w_down (D, F). Linear weights are
(out, in): y = x·Wᵀ. Quantized linears (bits 8 or 4) arrive as three arrays,
`<name>.q`, `<name>.scale`, `<name>.bias` (workloads.quant's affine form, groups along
the input dimension); the embedding table stays dense and, when quantized, the head is
the quantized copy of its weight (tied or not).

Precision convention (what llama.cpp, mlx-lm and HF do in half precision): weights,
activations, residual stream and SDPA in the weight dtype; RMSNorm and RoPE computed in
fp32 and rounded back; logits returned in fp32.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np

from workloads import parallel, quant
from workloads.base import Params

NORM_EPS = 1e-6  # Qwen2.5's rms_norm_eps (params may override: `norm_eps`, from a checkpoint's config)
ROPE_THETA = 1_000_000.0  # Qwen2.5's rope_theta (params: `rope_theta`)
LINEARS = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
NORMS = ("attn_norm", "mlp_norm")


class Ops(Protocol):
    def embed(self, table: Any, tokens: Any) -> Any: ...  # (B, T) -> (B, T, D)
    def linear(self, x: Any, w: Any) -> Any: ...  # x·wᵀ, w dense or the adapter's quantized weight
    def rms_norm(self, x: Any, g: Any) -> Any: ...
    def silu(self, x: Any) -> Any: ...
    def split_heads(self, x: Any, heads: int) -> Any: ...  # (B, T, n·hd) -> the layout `attend` takes
    def merge_heads(self, x: Any) -> Any: ...
    def rope(self, x: Any, pos: Any) -> Any: ...  # rotate positions pos .. pos+T-1
    def attend(self, q: Any, k: Any, v: Any, cache: Any, pos: Any) -> tuple[Any, Any]: ...
    """Write k, v at positions pos .. pos+T-1 of this layer's cache (None: no cache,
    attend to k, v themselves) and attend causally over positions 0 .. pos+T-1 with
    grouped-query heads and scale 1/sqrt(hd); returns (output, the updated cache)."""
    def logits(self, x: Any) -> Any: ...  # the head's output as fp32


def forward(ops: Ops, tree: Mapping[str, Any], tokens: Any, caches: list[Any] | None, pos: Any, p: Params,
            scored_from: int | None = None) -> tuple[Any, list[Any] | None]:
    """Logits (B, V) of the last position of `tokens` (B, T), which sit at positions
    pos .. pos+T-1 after what the caches already hold; returns them with the new caches.
    `scored_from` = k: the logits of positions k .. T-1 of `tokens`, (B, T-k, V) (scoring a
    sequence: quality, perplexity)."""
    h = ops.embed(tree["embed"], tokens)
    new_caches = [] if caches is not None else None
    for i, weights in enumerate(tree["blocks"]):
        h, cache = block(ops, weights, h, caches[i] if caches is not None else None, pos, p)
        if new_caches is not None:
            new_caches.append(cache)
    return head(ops, tree, h, scored_from), new_caches


def block(ops: Ops, weights: Mapping[str, Any], h: Any, cache: Any, pos: Any, p: Params) -> tuple[Any, Any]:
    """One transformer block on the hidden states h (B, T, D): (new h, its new cache).
    Apart from `forward` so a framework can run the blocks its own way (JAX scans them for
    the uncached checks: one block compiled instead of every layer unrolled)."""
    a = ops.rms_norm(h, weights["attn_norm"])
    q = ops.rope(ops.split_heads(ops.linear(a, weights["wq"]), p["heads"]), pos)
    k = ops.rope(ops.split_heads(ops.linear(a, weights["wk"]), p["kv_heads"]), pos)
    v = ops.split_heads(ops.linear(a, weights["wv"]), p["kv_heads"])
    o, cache = ops.attend(q, k, v, cache, pos)
    h = h + ops.linear(ops.merge_heads(o), weights["wo"])
    m = ops.rms_norm(h, weights["mlp_norm"])
    return h + ops.linear(ops.silu(ops.linear(m, weights["w_gate"])) * ops.linear(m, weights["w_up"]), weights["w_down"]), cache


def head(ops: Ops, tree: Mapping[str, Any], h: Any, scored_from: int | None = None) -> Any:
    """The final norm and the head: logits (B, V) of the last position, or (B, T-k, V) of
    positions k .. T-1 (`scored_from` = k). The head runs only where a position is scored:
    over a 512-token prompt and a 151,936-word vocabulary the head of every prompt position
    is ~70 GFLOP and a 0.3 GB fp32 array that the quality figures never read."""
    last = ops.rms_norm(h[:, -1:] if scored_from is None else h[:, scored_from:], tree["norm"])
    logits = ops.logits(ops.linear(last, tree["head"] if "head" in tree else tree["embed"]))
    return logits[:, 0] if scored_from is None else logits


# -- shapes, sizes, initialisation ------------------------------------------------------
def head_dim(p: Params) -> int:
    return p["d_model"] // p["heads"]


def linear_shapes(p: Params) -> dict[str, tuple[int, int]]:
    """Flat names and (out, in) shapes of every matmul weight, the head included."""
    d, f, hd = p["d_model"], p["ffn"], head_dim(p)
    one = {"wq": (p["heads"] * hd, d), "wk": (p["kv_heads"] * hd, d), "wv": (p["kv_heads"] * hd, d), "wo": (d, p["heads"] * hd)}
    one.update({"w_gate": (f, d), "w_up": (f, d), "w_down": (d, f)})
    out = {f"blocks.{i}.{k}": s for i in range(p["layers"]) for k, s in one.items()}
    out["head"] = (p["vocab"], d)
    return out


def param_count(p: Params) -> int:
    """Parameters of the model as a checkpoint counts them (a tied head counts once)."""
    linear = sum(a * b for a, b in linear_shapes(p).values())
    tied_head = p["vocab"] * p["d_model"] if p["tied"] else 0
    norms = (2 * p["layers"] + 1) * p["d_model"]
    return int(linear - tied_head + p["vocab"] * p["d_model"] + norms)


def model_bytes(p: Params, itemsize: int) -> float:
    """Bytes of the weights as stored: dense at the dtype's itemsize; quantized linears as
    packed codes plus one scale and one bias per group at the itemsize (mlx-lm's
    accounting). The embedding stays dense; a quantized head is its own copy."""
    d = p["d_model"]
    dense = (p["vocab"] * d + (2 * p["layers"] + 1) * d) * itemsize
    linear = 0.0
    for name, (n, k) in linear_shapes(p).items():
        if p["bits"] == 16:
            linear += 0 if name == "head" and p["tied"] else n * k * itemsize
        else:
            linear += n * k * p["bits"] / 8 + 2 * n * (k // p["group"]) * itemsize
    return float(dense + linear)


DENSE = "dense."  # prefix of the unquantized linears a quantized case also carries (init's keep_dense)


def init(p: Params, rng: np.random.Generator, keep_dense: bool = False) -> dict[str, np.ndarray]:
    """Weights: a local checkpoint's when the params name one (`model`, see
    workloads.checkpoint; float64), else seeded random ones in float32 (`_random_weights`): embedding N(0, 1/D) per entry (so a
    tied head gives O(1) logits), linears N(0, 1/in) (output projections further by
    1/sqrt(2·layers)), norm gains 1 + N(0, 0.1) (not ones, so a skipped gain shows in the
    logits). Quantized linears are replaced by their codes, scales and biases
    (workloads.quant, affine); `keep_dense` keeps the unquantized linears too, as
    `dense.<name>` (the same model unquantized, for bench.frameworks.llm_quality)."""
    if p.get("model"):
        from workloads import checkpoint

        dense = checkpoint.load_weights(p)
    else:
        dense = _random_weights(p, rng)
    out = {k: v for k, v in dense.items() if k not in linear_shapes(p)}
    tied = {"head"} if p["tied"] else set()  # a tied head is the embedding: stored once, as `embed`
    weights = {name: dense["embed"] if name in tied else dense[name] for name in linear_shapes(p)}
    if p["bits"] == 16:
        out.update({name: w for name, w in weights.items() if name not in tied})
        return out
    coded = parallel.thread_map(lambda name: quant.quantize(weights[name], p["bits"], "affine", p["group"]), weights)  # side by side
    for (name, w), (q, scale, bias) in zip(weights.items(), coded):
        out[f"{name}.q"], out[f"{name}.scale"], out[f"{name}.bias"] = q, scale, bias
        if keep_dense and name not in tied:
            out[DENSE + name] = w
    return out


def dense_of(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The flat weights of the unquantized model inside a quantized case's inputs (init's
    keep_dense): its dense linears with the shared embedding and norm gains."""
    return {k[len(DENSE) :] if k.startswith(DENSE) else k: v for k, v in flat.items() if k.startswith(DENSE) or not k.endswith((".q", ".scale", ".bias"))}


def _random_weights(p: Params, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Drawn in float32 (every row's dtype, fp32 or bf16, is float32 or narrower, so float64
    draws were rounded away anyway), in row blocks side by side (workloads.parallel: the
    0.5B draws were the largest part of a Qwen-shaped case's set-up on one core)."""
    d = p["d_model"]
    specs: dict[str, tuple[Any, float, float]] = {"embed": ((p["vocab"], d), 1.0 / np.sqrt(d), 0.0)}
    for name in [f"blocks.{i}.{n}" for i in range(p["layers"]) for n in NORMS] + ["norm"]:
        specs[name] = ((d,), 0.1, 1.0)
    for name, shape in linear_shapes(p).items():
        if name == "head" and p["tied"]:
            continue
        std = 1.0 / np.sqrt(shape[1])
        if name.endswith(("wo", "w_down")):
            std /= np.sqrt(2 * p["layers"])
        specs[name] = (shape, std, 0.0)
    return parallel.normal_arrays(rng, specs)


def nest(flat: Mapping[str, Any], p: Params, linear: Any = None, leaf: Any = None) -> dict[str, Any]:
    """Flat names → the tree `forward` reads. `linear(name, flat)` builds a matmul weight
    (default: the dense array, or the float64 dequantized one for quantized weights);
    `leaf(array)` the embedding and norm gains (default: as they are). Adapters pass
    their framework's conversions, so the layout is written once."""
    build = linear or (lambda name, f: f[name] if name in f else quant.dequantize(f[name + ".q"], f[name + ".scale"], f[name + ".bias"]))
    put = leaf or (lambda a: a)
    tree: dict[str, Any] = {"embed": put(flat["embed"]), "norm": put(flat["norm"])}
    if "head" in flat or "head.q" in flat:
        tree["head"] = build("head", flat)
    tree["blocks"] = [
        {**{n: put(flat[f"blocks.{i}.{n}"]) for n in NORMS}, **{n: build(f"blocks.{i}.{n}", flat) for n in LINEARS}} for i in range(p["layers"])
    ]
    return tree


def norm_eps(p: Params) -> float:
    return float(p.get("norm_eps", NORM_EPS))


def rope_theta(p: Params) -> float:
    return float(p.get("rope_theta", ROPE_THETA))


def rope_angles(positions: np.ndarray, hd: int, theta: float = ROPE_THETA) -> np.ndarray:
    """(T, hd/2) angles pos·θ^(−2i/hd) in float64 (adapters take cos/sin of these)."""
    inv_freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    return np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]


# -- the float64 reference -------------------------------------------------------------
class NumpyOps:
    """float64 primitives; caches are dicts {"k", "v"} of (B, Hkv, L, hd) arrays, written
    functionally (a copy), so the reference can also prove the cache path."""

    def __init__(self, p: Params) -> None:
        self.hd, self.eps, self.theta = head_dim(p), norm_eps(p), rope_theta(p)

    def embed(self, table: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return table[np.asarray(tokens, dtype=np.int64)]

    def linear(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x @ w.T

    def rms_norm(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * g

    def silu(self, x: np.ndarray) -> np.ndarray:
        return x / (1.0 + np.exp(-x))

    def split_heads(self, x: np.ndarray, heads: int) -> np.ndarray:
        b, t, _ = x.shape
        return x.reshape(b, t, heads, self.hd).transpose(0, 2, 1, 3)

    def merge_heads(self, x: np.ndarray) -> np.ndarray:
        b, h, t, hd = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, h * hd)

    def rope(self, x: np.ndarray, pos: int) -> np.ndarray:
        ang = rope_angles(np.arange(pos, pos + x.shape[-2]), self.hd, self.theta)
        cos, sin = np.cos(ang), np.sin(ang)
        x1, x2 = x[..., : self.hd // 2], x[..., self.hd // 2 :]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def attend(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, cache: Any, pos: int) -> tuple[np.ndarray, Any]:
        t = q.shape[-2]
        if cache is not None:
            cache = {n: c.copy() for n, c in cache.items()}
            cache["k"][:, :, pos : pos + t], cache["v"][:, :, pos : pos + t] = k, v
            k, v = cache["k"][:, :, : pos + t], cache["v"][:, :, : pos + t]
        group = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(self.hd)
        s = k.shape[-2]
        visible = np.arange(s)[None, :] <= (s - t + np.arange(t))[:, None]
        scores = np.where(visible, scores, -np.inf)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        return (w / w.sum(-1, keepdims=True)) @ v, cache

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x


def empty_cache(p: Params, batch: int, length: int) -> list[dict[str, np.ndarray]]:
    shape = (batch, p["kv_heads"], length, head_dim(p))
    return [{"k": np.zeros(shape), "v": np.zeros(shape)} for _ in range(p["layers"])]


def prefill(tree: Mapping[str, Any], prompt: np.ndarray, length: int, p: Params) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """float64 prefill of one prompt (T,) into a cache of `length` positions: the last
    position's logits (1, V) and the caches. NumpyOps writes caches functionally (a copy
    per step), so several decodings may start from one prefill."""
    tokens = np.asarray(prompt, dtype=np.int64)[None]
    return forward(NumpyOps(p), tree, tokens, empty_cache(p, 1, length), 0, p)


def greedy(tree: Mapping[str, Any], prompt: np.ndarray, steps: int, p: Params, forced: list[int] | None = None,
           start: tuple[np.ndarray, list[dict[str, np.ndarray]]] | None = None) -> list[int]:
    """float64 greedy decoding of one prompt (T,) with the cache: the first `steps` picks
    (the first from the prefill). With `forced`, step i+1 is fed forced[i] instead of
    the reference's own pick (teacher forcing): then pick i is the reference's choice
    given exactly the prefix another implementation generated. `start`: the prompt's
    `prefill` (a cache of at least T + steps positions) when one is at hand."""
    ops = NumpyOps(p)
    prompt = np.asarray(prompt, dtype=np.int64)[None]
    logits, caches = start if start is not None else prefill(tree, prompt[0], prompt.shape[1] + steps, p)
    if caches[0]["k"].shape[2] < prompt.shape[1] + steps - 1:
        raise ValueError(f"the prefill's cache holds {caches[0]['k'].shape[2]} positions; {prompt.shape[1] + steps - 1} are needed")
    picks = [int(np.argmax(logits[0]))]
    for i in range(steps - 1):
        fed = picks[-1] if forced is None else int(forced[i])
        logits, caches = forward(ops, tree, np.array([[fed]]), caches, prompt.shape[1] + i, p)
        picks.append(int(np.argmax(logits[0])))
    return picks
