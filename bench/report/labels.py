"""Compact case labels, named the way each workload's users name the case.

A label must fit on one line of a phone-width chart and still say which case it is:
`Qwen2.5-0.5B shape · int4 g64 · batch 1`, `16×4096·4096²`, `B4 H32 S4096 D128 causal`.
The full parameters are never lost: `params_text` is shown on hover and in the table.
Labels are chosen from the parameter names a row carries (not from the workload's name),
so a new workload with familiar parameters gets a sensible label without a code change,
and an unfamiliar one falls back to `k=v` pairs.
"""

from __future__ import annotations

import json
from typing import Any, Callable

# Published model architectures whose shapes the LLM workloads use (workloads.generate).
# Key: (layers, d_model, heads, kv_heads, ffn, vocab).
KNOWN_SHAPES = {
    (24, 896, 14, 2, 4864, 151_936): "Qwen2.5-0.5B",
    (28, 1536, 12, 2, 8960, 151_936): "Qwen2.5-1.5B",
    (16, 2048, 32, 8, 8192, 128_256): "Llama-3.2-1B",
    (28, 3072, 24, 8, 8192, 128_256): "Llama-3.2-3B",
    (32, 4096, 32, 8, 14336, 128_256): "Llama-3.1-8B",
}


def _dims(a: int, b: int) -> str:
    return f"{a}²" if a == b else f"{a}×{b}"


def si_count(n: float) -> str:
    """4194304 → '4.19M': element and token counts in a label."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{prefix}"
    return f"{n:g}"


def _matmul(p: dict[str, Any]) -> str:
    m, n, k = p["m"], p["n"], p["k"]
    shape = f"{m}³" if m == n == k else f"{_dims(m, k)}·{_dims(k, n)}"
    return f"{p['batch']}× {shape}" if p.get("batch", 1) not in (1, None) else shape


def _quant(p: dict[str, Any]) -> str:
    scheme = p.get("scheme", "affine")
    group = f" g{p['group']}" if p.get("group") else ""
    return f"int{p['bits']}{group}" + ("" if scheme in ("affine", None) else f" {scheme}")


def _qmatmul(p: dict[str, Any]) -> str:
    return f"{_matmul(p)} · {_quant(p)}"


def _llm(p: dict[str, Any]) -> str:
    key = tuple(p.get(k) for k in ("layers", "d_model", "heads", "kv_heads", "ffn", "vocab"))
    model = p.get("model")
    if isinstance(model, str) and model:
        name = model.rstrip("/").split("/")[-1]  # a local checkpoint: its folder's name
    elif key in KNOWN_SHAPES:
        name = f"{KNOWN_SHAPES[key]} shape"
    else:
        name = f"L{p['layers']} d{p['d_model']}"
    weights = "16-bit" if p.get("bits", 16) >= 16 else _quant(p)
    return f"{name} · {weights} · batch {p['batch']}"


def _training(p: dict[str, Any]) -> str:
    lora = f" · LoRA r{p['lora_rank']}" if "lora_rank" in p else ""
    return f"L{p['layers']} d{p['d_model']} · {p['batch']}×{p['seq']} tokens{lora}"


def _attention(p: dict[str, Any]) -> str:
    heads = f"H{p['heads']}" + (f"/{p['kv_heads']}" if p.get("kv_heads") not in (None, p["heads"]) else "")
    kv = f" KV{p['kv_seq']}" if p.get("kv_seq") not in (None, p["seq"]) else ""
    causal = " causal" if p.get("causal") else ""
    return f"B{p['batch']} {heads} S{p['seq']}{kv} D{p['head_dim']}{causal}"


def _decode_attention(p: dict[str, Any]) -> str:
    """`q1 · H14/2 · KV 2048 · D64 · batch 1`: the query length and the cache length are what a
    decode-attention reader compares (one new token against how many cached ones)."""
    heads = f"H{p['heads']}" + (f"/{p['kv_heads']}" if p["kv_heads"] != p["heads"] else "")
    return f"q{p['q_len']} · {heads} · KV {p['kv_len']} · D{p['head_dim']} · batch {p['batch']}"


def _elements(p: dict[str, Any]) -> str:
    return f"{si_count(p['n'])} elements"


# (parameters a case must have, label). First match wins, most specific first.
RULES: tuple[tuple[frozenset[str], Callable[[dict[str, Any]], str]], ...] = (
    (frozenset({"layers", "d_model", "heads", "vocab", "prompt", "new_tokens", "batch"}), _llm),
    (frozenset({"layers", "d_model", "seq", "batch"}), _training),
    (frozenset({"m", "n", "k", "bits"}), _qmatmul),
    (frozenset({"m", "n", "k"}), _matmul),
    (frozenset({"batch", "heads", "seq", "head_dim"}), _attention),
    (frozenset({"batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"}), _decode_attention),
    (frozenset({"n"}), _elements),
)


def parse(params: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(params) if isinstance(params, str) else params
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def case_label(params: Any) -> str:
    """The compact label of a case (see the module docstring)."""
    p = parse(params)
    if p is None:
        return str(params)
    for needed, label in RULES:
        if needed <= p.keys():
            try:
                return label(p)
            except (KeyError, TypeError, ValueError):
                break  # a familiar name with an unfamiliar value: the generic label below
    text = " ".join(f"{k}={v}" for k, v in p.items())
    return text if len(text) <= 48 else text[:47] + "…"


def params_text(params: Any) -> str:
    """Every parameter, `k=v`, for hover and the table."""
    p = parse(params)
    return str(params) if p is None else " ".join(f"{k}={v}" for k, v in p.items())
