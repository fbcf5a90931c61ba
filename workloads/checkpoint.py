"""A local Hugging Face checkpoint of the Llama family as `generate` parameters and weights.

A model folder holds config.json and one or more *.safetensors files. The safetensors
format is an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}} and the raw bytes, so it is read here with NumPy alone (the `safetensors`
package is not needed, and nothing is ever downloaded). F32, F16 and BF16 tensors are
supported. Names follow transformers' LlamaForCausalLM (model.embed_tokens, model.layers.i.
self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj, input_layernorm,
post_attention_layernorm, model.norm, lm_head). Checkpoints whose attention projections
carry biases (Qwen2) are refused: workloads.llama has none.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}
_LINEARS = {
    "wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj",
    "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj",
}  # fmt: skip
_NORMS = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of one .safetensors file as float64."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, not one of {', '.join(_DTYPES)}")
        start, end = info["data_offsets"]
        a = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]], count=(end - start) // np.dtype(_DTYPES[info["dtype"]]).itemsize, offset=8 + n + start)
        if info["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


def model_params(folder: str | Path) -> dict[str, Any]:
    """The architecture part of `generate`'s parameters, from config.json."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    if cfg.get("attention_bias") or cfg.get("model_type") == "qwen2":
        raise ValueError(f"{folder}: attention projections with biases ({cfg.get('model_type')}) are not supported")
    d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    if cfg.get("head_dim", d // heads) != d // heads:
        raise ValueError(f"{folder}: head_dim {cfg['head_dim']} != hidden_size / heads")
    return {
        "layers": cfg["num_hidden_layers"], "d_model": d, "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads", heads), "ffn": cfg["intermediate_size"], "vocab": cfg["vocab_size"],
        "tied": bool(cfg.get("tie_word_embeddings", False)), "rope_theta": float(cfg.get("rope_theta", 10000.0)),
        "norm_eps": float(cfg.get("rms_norm_eps", 1e-6)), "model": str(Path(folder).resolve()),
    }  # fmt: skip


def load_weights(p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """float64 weights under workloads.llama's flat names ("blocks.3.wq", "embed", ...)."""
    raw: dict[str, np.ndarray] = {}
    for f in sorted(Path(p["model"]).glob("*.safetensors")):
        raw.update(read_safetensors(f))
    if not raw:
        raise FileNotFoundError(f"no *.safetensors in {p['model']}")
    out = {"embed": raw["model.embed_tokens.weight"], "norm": raw["model.norm.weight"]}
    if not p["tied"]:
        out["head"] = raw["lm_head.weight"]
    for i in range(p["layers"]):
        pre = f"model.layers.{i}."
        out.update({f"blocks.{i}.{k}": raw[pre + v + ".weight"] for k, v in {**_LINEARS, **_NORMS}.items()})
    return out


TEXT_TOKENS = 256  # tokens of workloads.texts scored for perplexity: a few hundred words, one forward


def text_tokens(p: Mapping[str, Any], limit: int = TEXT_TOKENS) -> tuple[np.ndarray | None, str]:
    """The bundled real text (workloads.texts) as the checkpoint's own token ids, at most
    `limit` of them, and what was tokenized; (None, why) where there is nothing to score:
    random weights, a folder without tokenizer.json, or no `tokenizers` package (the
    tokenizer file is read with Hugging Face's `tokenizers`, installed with transformers;
    it is not required, and nothing is downloaded)."""
    from workloads import texts

    folder = p.get("model")
    if not folder:
        return None, "random weights: perplexity needs a checkpoint (--model DIR)"
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None, f"no tokenizer.json in {folder}: the text cannot be tokenized"
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None, "perplexity needs the tokenizers package (pip install tokenizers) to read tokenizer.json"
    ids = np.asarray(Tokenizer.from_file(str(path)).encode(texts.TEXT).ids[:limit], dtype=np.int64)
    if ids.size < 2:
        return None, f"{path} turned the text into {ids.size} token(s): nothing to predict"
    if int(ids.max()) >= p["vocab"]:
        return None, f"{path} gives token id {int(ids.max())}, outside the model's vocabulary of {p['vocab']}"
    return ids, f"{texts.NAME}: first {ids.size} tokens by {path.name}"
