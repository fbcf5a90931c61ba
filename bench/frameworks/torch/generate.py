"""PyTorch's `generate` (found by TorchAdapter.prepare): a preallocated KV
cache per layer (B, Hkv, L, hd) written in place (a static cache, as transformers'
StaticCache), `F.scaled_dot_product_attention(enable_gqa=True)` (KV heads repeated where
the build lacks it), `F.rms_norm` with fp32 gains converted once, RoPE as one
`roll`-and-multiply over fp32 cos/sin tables taken once per position.

Eager mode: the decode step under `inference_mode`, attention over the cache sliced to
the position (its shape grows by one each step). Compiled mode: the WHOLE greedy step
through `torch.compile(fullgraph=True)` — on CUDA `mode="reduce-overhead"` (CUDA graphs) —
forward, argmax, the pick written into a token buffer and the position buffer advanced,
all in one graph. Token buffer, position buffer and cache are static addresses updated in
place, so a graph replays with no input copy and is never re-recorded: the position is a
tensor (the cache is written with `index_copy_` at it and attention reads the whole cache
under a length mask), never a Python int the graph would specialise on. A generated token
costs the host: mark the step, replay, read the pick back. The timed call (one step at
the fixed position) adds two tiny writes: the step's token and position into the buffers.
Prefill stays eager in both modes (it runs once per prompt).

Quantized weights: int4 through torch's tinygemm kernels (as qmatmul:
`_weight_int4pack_mm_for_cpu` on CPU, `_weight_int4pack_mm` elsewhere, bf16 only on
CUDA). int8 with g64 groups has no torch kernel (`_weight_int8pack_mm` takes one scale
per output channel): unsupported, as in qmatmul.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.generation import generation_prepared, quality_scorers, weight_bits
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
        # rotate-half as x·[cos, cos] + roll(x, hd/2)·[−sin, sin]: one roll instead of four slices and a cat
        self.cos, self.sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([-ang.sin(), ang.sin()], -1)
        self._at: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def embed(self, table: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, table)

    def linear(self, x: torch.Tensor, w: Any) -> torch.Tensor:
        return w(x) if callable(w) else F.linear(x, w)

    def rms_norm(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), g, self.eps).to(x.dtype)  # g: fp32 already (prepare_generate)

    def silu(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, heads, self.hd).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, h, t, hd = x.shape
        return x.transpose(1, 2).reshape(b, t, h * hd)

    def angles(self, pos: Any, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (pos, t)
        if key not in self._at:  # q and k of every layer share them: sliced once per position
            self._at[key] = (self.cos[pos : pos + t], self.sin[pos : pos + t])
        return self._at[key]

    def rope(self, x: torch.Tensor, pos: Any) -> torch.Tensor:
        cos, sin = self.angles(pos, x.shape[-2])
        xf = x.float()
        return (xf * cos + xf.roll(self.hd // 2, -1) * sin).to(x.dtype)

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


class TorchStaticLlamaOps(TorchLlamaOps):
    """One-token decode with every shape fixed, for torch.compile and CUDA graphs: `pos` is
    an int64 tensor of shape (1,); the cache is written with index_copy_ at it and attention
    reads the whole cache under the mask "position ≤ pos" (what transformers' StaticCache does)."""

    def __init__(self, p: Mapping[str, Any], device: torch.device, max_len: int, gqa: bool) -> None:
        super().__init__(p, device, max_len, gqa)
        self.positions = torch.arange(max_len, device=device)

    def angles(self, pos: Any, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[pos], self.sin[pos]  # (1, hd): a gather at the position tensor

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: Any, pos: Any) -> tuple[torch.Tensor, Any]:
        kc, vc = cache
        kc.index_copy_(2, pos, k)
        vc.index_copy_(2, pos, v)
        mask = (self.positions <= pos)[None, None, None, :]
        if not self.gqa:
            group = q.shape[1] // kc.shape[1]
            return F.scaled_dot_product_attention(q, kc.repeat_interleave(group, 1), vc.repeat_interleave(group, 1), attn_mask=mask), cache
        return F.scaled_dot_product_attention(q, kc, vc, attn_mask=mask, enable_gqa=True), cache


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

    tree = _fp32_norms(llama.nest(x, p, build, lambda a: adapter.asarray(a, dtype)))
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

    how, fused = "eager torch", {}
    if adapter.compiled:
        decode, how, fused = _compiled_decode(adapter, tree, caches, p, max_len, gqa)

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
        implementation=f"{how}, preallocated KV cache + {attention}, F.rms_norm; weights {weights}",
        mode=adapter.mode,
        **fused,
        **quality_scorers(adapter, p, dtype, x, ops, tree, wrap=torch.inference_mode(), finish=_fp32_norms),
    )


def _fp32_norms(tree: Any) -> Any:
    """RMSNorm gains in fp32 once (the values rounded to the dtype, as stored): not a cast per call."""
    tree["norm"] = tree["norm"].float()
    for block in tree["blocks"]:
        block["attn_norm"], block["mlp_norm"] = block["attn_norm"].float(), block["mlp_norm"].float()
    return tree


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor a weight tree holds: in dicts and lists, and inside a quantized linear
    (a closure over an Int4Weight, whose fields hold the packed codes and scales)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    if isinstance(obj, types.FunctionType) and obj.__closure__:
        return [t for cell in obj.__closure__ for t in _tensors(cell.cell_contents)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for field in dataclasses.fields(obj) for t in _tensors(getattr(obj, field.name))]
    return []


def _compiled_decode(adapter: Any, tree: Any, caches: list[Any], p: Mapping[str, Any], max_len: int, gqa: bool) -> tuple[Any, str, dict[str, Any]]:
    """One compiled graph per step that does everything a greedy step does: the forward at
    the position, the argmax, writing the pick into the token buffer and advancing the
    position buffer (what transformers' static-cache generate keeps outside its compiled
    forward, as separate launches). The token and position buffers and the cache are
    static addresses, so CUDA graphs replay on them with no input copy and no re-record
    (the position is a tensor the graph reads, never a Python int the graph specialises
    on); the host's work per generated token is: mark the step, replay, read the pick."""
    from bench.frameworks.torch.ops import torch_compile

    ops = TorchStaticLlamaOps(p, adapter.device, max_len, gqa)
    tokens_buf = torch.zeros((p["batch"],), dtype=torch.int64, device=adapter.device)
    pos_buf = torch.zeros((1,), dtype=torch.int64, device=adapter.device)
    # graphs replay on fixed addresses. The weights too: plain tensors (not nn.Parameters) that the
    # step reads from its closure are graph inputs CUDA-graph trees would copy into the graph's own
    # buffers before every replay (one copy launch per tensor, the whole model per token)
    for t in [tokens_buf, pos_buf, *(t for kv in caches for t in kv), *_tensors(tree)]:
        torch._dynamo.mark_static_address(t)

    def step() -> torch.Tensor:  # buffers read from the closure, as the cache is: static, mutated in place
        logits = llama.forward(ops, tree, tokens_buf[:, None], caches, pos_buf, p)[0]
        tokens_buf.copy_(logits.argmax(-1))  # the greedy pick, in the graph
        pos_buf.add_(1)  # the next step's position, in the graph
        return logits

    # Every case's `step` has the same code object, so dynamo would treat the next case's shapes
    # (another batch or cache length) as the same function's second shape and compile it with
    # dynamic shapes ("automatic dynamic"): a case's graph, and its figure, would depend on which
    # cases ran before it in the process. Forgetting dynamo's state compiles each case as a fresh
    # process does; inductor's and Triton's on-disk caches still serve what they hold.
    torch.compiler.reset()
    compiled, how = torch_compile(adapter, step, fullgraph=True)
    cuda = adapter.backend == "cuda"
    at = {"pos": -1}  # the position pos_buf holds, as the host knows it (no read-back)

    @torch.no_grad()
    def run(tokens: torch.Tensor, pos: int) -> torch.Tensor:
        if tokens is not tokens_buf:
            tokens_buf.copy_(tokens)
        if at["pos"] != pos:
            pos_buf.fill_(pos)
        if cuda:  # each call is a new step for CUDA-graph trees: the previous logits may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        logits = compiled()
        at["pos"] = pos + 1
        return logits

    def step_greedy(tokens: torch.Tensor, pos: int) -> torch.Tensor:
        run(tokens, pos)
        return tokens_buf

    # a copy: on the CPU, .cpu() is the buffer itself, which the next step overwrites
    fused = {"step_greedy": step_greedy, "to_host": lambda t: t.cpu().numpy().copy()}
    return run, (f"{how}(whole greedy step in one graph: forward at a position tensor, argmax, token and position "
                 "buffers updated in place; static cache written with index_copy_, length-masked attention), eager prefill"), fused
