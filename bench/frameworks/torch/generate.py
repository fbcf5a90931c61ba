"""PyTorch's `generate` (found by TorchAdapter.prepare): eager torch under
`inference_mode`, a preallocated KV cache per layer (B, Hkv, L, hd) written in place,
`F.scaled_dot_product_attention(enable_gqa=True)` (KV heads repeated where the build
lacks it), `F.rms_norm`. Quantized weights: int4 through torch's tinygemm kernels (as
qmatmul: `_weight_int4pack_mm_for_cpu` on CPU, `_weight_int4pack_mm` elsewhere, bf16
only on CUDA). int8 with g64 groups has no torch kernel (`_weight_int8pack_mm` takes one
scale per channel): unsupported, as in qmatmul. No torch.compile: its CPU compile
outlasts the suite, and CUDA-graph capture of a mutating cache is what crashed in
transformers (research/h100-direct-timings.md); the row says eager.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.generation import generation_prepared, weight_bits
from bench.frameworks.torch.ops import int4_weight
from workloads import llama


def _has_enable_gqa() -> bool:
    try:
        q = torch.zeros(1, 2, 1, 4)
        F.scaled_dot_product_attention(q, torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4), enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


class TorchLlamaOps:
    def __init__(self, p: Mapping[str, Any], device: torch.device, max_len: int, gqa: bool) -> None:
        self.hd, self.gqa, self.eps = llama.head_dim(p), gqa, llama.norm_eps(p)
        ang = torch.from_numpy(llama.rope_angles(np.arange(max_len), self.hd, llama.rope_theta(p))).float().to(device)
        self.cos, self.sin = ang.cos(), ang.sin()

    def embed(self, table: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, table)

    def linear(self, x: torch.Tensor, w: Any) -> torch.Tensor:
        return w(x) if callable(w) else F.linear(x, w)

    def rms_norm(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), g.float(), self.eps).to(x.dtype)

    def silu(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, heads, self.hd).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, h, t, hd = x.shape
        return x.transpose(1, 2).reshape(b, t, h * hd)

    def rope(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        t = x.shape[-2]
        cos, sin = self.cos[pos : pos + t], self.sin[pos : pos + t]
        xf = x.float()
        x1, x2 = xf[..., : self.hd // 2], xf[..., self.hd // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: Any, pos: int) -> tuple[torch.Tensor, Any]:
        t = q.shape[-2]
        if cache is not None:
            kc, vc = cache
            kc[:, :, pos : pos + t] = k
            vc[:, :, pos : pos + t] = v
            k, v = kc[:, :, : pos + t], vc[:, :, : pos + t]
        if pos != 0 and t > 1:
            raise NotImplementedError("chunked prefill after a cached context is not part of this workload")
        if not self.gqa:
            group = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=t > 1), cache
        return F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, enable_gqa=True), cache

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def _int4_linear(adapter: Any, q: np.ndarray, scale: np.ndarray, bias: np.ndarray, group: int, dtype: str) -> Any:
    weight = int4_weight(adapter, q, scale, bias, group, dtype)

    def linear(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return weight(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)

    return linear


def prepare_generate(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p, (4, 8, 16))
    if bits == 8:
        raise Unsupported(
            "torch has no int8 kernel with g64 groups (_weight_int8pack_mm takes one scale per output channel, no zero point)"
        )
    device = adapter.device

    def build(name: str, flat: Mapping[str, np.ndarray]) -> Any:
        if name in flat:
            return adapter.asarray(flat[name], dtype)
        return _int4_linear(adapter, flat[name + ".q"], flat[name + ".scale"], flat[name + ".bias"], p["group"], dtype)

    tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype))
    max_len = p["prompt"] + p["new_tokens"]
    gqa = _has_enable_gqa()
    ops = TorchLlamaOps(p, device, max_len, gqa)
    shape = (p["batch"], p["kv_heads"], max_len, llama.head_dim(p))
    torch_dtype = tree["embed"].dtype
    caches = [(torch.zeros(shape, dtype=torch_dtype, device=device), torch.zeros(shape, dtype=torch_dtype, device=device)) for _ in range(p["layers"])]

    @torch.inference_mode()
    def prefill(tokens: torch.Tensor) -> torch.Tensor:
        return llama.forward(ops, tree, tokens, caches, 0, p)[0]

    @torch.inference_mode()
    def decode(tokens: torch.Tensor, pos: int) -> torch.Tensor:
        return llama.forward(ops, tree, tokens[:, None], caches, pos, p)[0]

    weights = "dense " + dtype if bits == 16 else f"int4 g{p['group']} tinygemm ({'_weight_int4pack_mm_for_cpu' if adapter.backend == 'cpu' else '_weight_int4pack_mm'}), {dtype} activations"
    attention = "F.scaled_dot_product_attention(enable_gqa=True)" if gqa else "F.scaled_dot_product_attention (KV heads repeated)"
    return generation_prepared(
        adapter,
        dict(p),
        dtype,
        x["prompt"],
        prefill=prefill,
        decode=decode,
        put=lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64)).to(device),
        argmax=lambda logits: logits.argmax(-1).cpu().numpy(),
        implementation=f"eager torch, preallocated KV cache + {attention}, F.rms_norm; weights {weights}",
    )
