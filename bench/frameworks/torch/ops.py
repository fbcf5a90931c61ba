"""PyTorch's qmatmul, train_step and lora (found by TorchAdapter.prepare), and the int4 weight
layout generate shares (`int4_weight`).

Quantized matmul runs torch's own weight-only kernels, found by feature detection:
`_weight_int8pack_mm` (int8, one scale per output channel) and the int4 "tinygemm"
kernels, `_weight_int4pack_mm_for_cpu` on CPU (torch >= 2.6, pytorch#139611) or
`_weight_int4pack_mm` elsewhere, whose packing input changed from int32 [N, K] to uint8
[N, K/2] in 2.5 (pytorch#129940): the uint8 layout is tried first, then the old one.
Training runs under `torch.autocast(bf16)` with fp32 master weights and AdamW (fused
where the build has it): eager, or with the model's forward (and so its backward, by
AOTAutograd) through `torch_compile` below. LoRA uses peft when installed, otherwise an
equivalent hand-written adapter layer (the implementation string says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.frameworks.base import Prepared, Unsupported
from bench.frameworks.generation import weight_bits
from bench.frameworks.training import training_entry_points, training_prepared
from workloads import corpus, decoder, quant, training

_TINYGEMM_GROUPS = (32, 64, 128, 256)


# -- torch.compile ------------------------------------------------------------------------
MPS_INDUCTOR = (2, 9)  # inductor's Metal code generation: usable from torch 2.9


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def torch_compile(adapter: Any, fn: Any, *, fullgraph: bool = False) -> tuple[Any, str]:
    """`fn` through torch.compile the way each backend wants it, with the words for the
    row's implementation: inductor everywhere; on CUDA `mode="reduce-overhead"` (inductor
    kernels replayed as CUDA graphs, which removes the per-kernel launch cost that
    dominates batch-1 decode); on MPS only where inductor generates Metal (torch >= 2.9)."""
    if adapter.backend == "metal" and _version(torch.__version__) < MPS_INDUCTOR:
        raise Unsupported(f"torch.compile on MPS needs inductor's Metal code generation (torch >= 2.9); this is torch {torch.__version__}")
    if adapter.backend == "cuda":
        return torch.compile(fn, mode="reduce-overhead", fullgraph=fullgraph), 'torch.compile(inductor, mode="reduce-overhead": CUDA graphs)'
    return torch.compile(fn, fullgraph=fullgraph), f"torch.compile(inductor, {adapter.backend})"


# -- qmatmul ----------------------------------------------------------------------------
def prepare_qmatmul(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    bits = weight_bits(p, (4, 8))
    xt = adapter.asarray(x["x"], dtype)
    return (_int8 if bits == 8 else _int4)(adapter, p, dtype, x, xt)


def _int8(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], xt: torch.Tensor) -> Prepared:
    op = getattr(torch.ops.aten, "_weight_int8pack_mm", None)
    if op is None:
        raise Unsupported(f"torch {torch.__version__} has no aten._weight_int8pack_mm")
    if p["scheme"] != "symmetric":
        raise Unsupported(
            f"torch._weight_int8pack_mm takes one scale per output channel and no zero point; "
            f"the {p['scheme']} int8 scheme with groups of {p['group']} has no torch kernel"
        )
    w = torch.from_numpy((np.asarray(x["q"]) - 128).astype(np.int8)).to(adapter.device)
    scales = adapter.asarray(np.ascontiguousarray(x["scale"][:, 0]), dtype)
    return Prepared(lambda: op(xt, w, scales), "torch._weight_int8pack_mm (int8, per-channel scales)")


def _int4(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], xt: torch.Tensor) -> Prepared:
    group, scale, bias = p["group"], x["scale"], x["bias"]
    if group not in _TINYGEMM_GROUPS:  # per-channel: the same scales repeated in groups of 64 (exact)
        scale, bias, group = quant.expand_groups(scale, p["k"], 64), quant.expand_groups(bias, p["k"], 64), 64
    w = int4_weight(adapter, x["q"], scale, bias, group, dtype)
    return Prepared(lambda: w(xt), f"{w.kernel} (int4 tinygemm, g{group})")


@dataclass(frozen=True)
class Int4Weight:
    """An int4 weight in torch's tinygemm layout; calling it on x (M, K) gives x·Wᵀ (M, N)."""

    op: Callable[..., torch.Tensor]
    packed: torch.Tensor
    group: int
    scales_zeros: torch.Tensor
    kernel: str  # the aten op's name, for the row's implementation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x, self.packed, self.group, self.scales_zeros)


def int4_weight(adapter: Any, codes: np.ndarray, scale: np.ndarray, bias: np.ndarray, group: int, dtype: str) -> Int4Weight:
    """Affine int4 codes (N, K) with per-group scale and bias as torch's tinygemm weight:
    `_weight_int4pack_mm_for_cpu` on CPU where it exists, `_weight_int4pack_mm` elsewhere
    (bf16 activations only on CUDA). tinygemm computes (q - 8)·s + zero, so zero = bias + 8·s.
    Used by qmatmul and by generate's quantized linears."""
    s = adapter.asarray(scale, dtype)
    zero = (adapter.asarray(bias, dtype).float() + 8 * s.float()).to(s.dtype)
    scales_zeros = torch.stack([s, zero], dim=-1).transpose(0, 1).contiguous()  # [K/g, N, 2]
    codes = np.asarray(codes)
    if adapter.backend == "cpu" and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(torch.from_numpy(codes.astype(np.int32)), 2)
        return Int4Weight(torch.ops.aten._weight_int4pack_mm_for_cpu, packed, group, scales_zeros, "torch._weight_int4pack_mm_for_cpu")
    if adapter.backend == "cuda" and dtype != "bf16":
        raise Unsupported("torch's CUDA int4 tinygemm kernel takes bf16 activations only")
    return Int4Weight(torch.ops.aten._weight_int4pack_mm, _pack_int4(adapter.device, codes), group, scales_zeros, "torch._weight_int4pack_mm")


def _pack_int4(device: torch.device, codes: np.ndarray) -> torch.Tensor:
    convert = torch.ops.aten._convert_weight_to_int4pack
    try:  # torch >= 2.5: uint8 [N, K/2]
        return convert(torch.from_numpy(quant.pack_nibbles(codes)).to(device), 8)
    except RuntimeError:  # torch <= 2.4: int32 [N, K]
        return convert(torch.from_numpy(codes.astype(np.int32)).to(device), 8)


# -- the decoder --------------------------------------------------------------------------
class TorchOps:
    """decoder.Ops for torch under autocast: linear/SDPA/GELU run in bf16 by autocast;
    layer norm and the loss are pinned to fp32 so the convention holds on every backend."""

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type

    def embed(self, table: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, table)

    def linear(self, x: torch.Tensor, w: Any) -> torch.Tensor:
        return w(x) if isinstance(w, nn.Module) else F.linear(x, w)

    def f32(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()

    def layer_norm(self, x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, enabled=False):
            return F.layer_norm(x.float(), (x.shape[-1],), g, b, decoder.LN_EPS)

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, heads, d // heads).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, enabled=False):
            return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _linear(weight: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight = nn.Parameter(torch.tensor(weight, dtype=torch.float32))  # a copy: never train the caller's array
    return layer


def _leaf(name: str, value: np.ndarray) -> nn.Module | nn.Parameter:
    """Linear weights become nn.Linear (what peft's target_modules match); the rest Parameters."""
    if value.ndim == 2 and name not in ("embed", "pos"):
        return _linear(value)
    return nn.Parameter(torch.tensor(value, dtype=torch.float32))


class _Holder(nn.Module):
    def __init__(self, leaves: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        for name, value in leaves.items():
            setattr(self, name, _leaf(name, value))


class Decoder(nn.Module):
    """workloads.decoder as an nn.Module: parameters registered natively, forward = decoder.loss."""

    def __init__(self, flat: Mapping[str, np.ndarray], p: Mapping[str, Any], device_type: str) -> None:
        super().__init__()
        self.top = _Holder({k: flat[k] for k in decoder.shapes(p, corpus.VOCAB) if "." not in k})
        self.blocks = nn.ModuleList(_Holder({k: flat[f"blocks.{i}.{k}"] for k in decoder.BLOCK_KEYS}) for i in range(p["layers"]))
        self.heads = p["heads"]
        self.ops = TorchOps(device_type)

    def tree(self) -> dict[str, Any]:
        flat = {name: getattr(self.top, name) for name in self.top._parameters} | dict(self.top.named_children())
        flat.update({f"blocks.{i}.{k}": getattr(b, k) for i, b in enumerate(self.blocks) for k in decoder.BLOCK_KEYS})
        return decoder.nest(flat, len(self.blocks))

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return decoder.loss(self.ops, self.tree(), inputs, targets, self.heads)


class LoRALinear(nn.Module):
    """y = base(x) + scale·B(A(x)), base frozen: peft's LoRA Linear without dropout."""

    def __init__(self, base: nn.Linear, a: np.ndarray, b: np.ndarray, scale: float) -> None:
        super().__init__()
        self.base, self.lora_A, self.lora_B, self.scale = base, _linear(a), _linear(b), scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


def _add_lora(model: Decoder, x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> str:
    """Freeze the base, add adapters on decoder.LORA_TARGETS, load the shared init into them."""
    model.requires_grad_(False)
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        for i, block in enumerate(model.blocks):
            for t in decoder.LORA_TARGETS:
                setattr(block, t, LoRALinear(getattr(block, t), x[f"lora.{i}.{t}.a"], x[f"lora.{i}.{t}.b"], training.lora_scale(p)))
        return "hand-written LoRALinear (peft not installed)"
    config = LoraConfig(r=p["lora_rank"], lora_alpha=p["lora_alpha"], target_modules=list(decoder.LORA_TARGETS), lora_dropout=0.0, bias="none")
    get_peft_model(model, config)  # injects lora.Linear layers into `model` in place
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            for t in decoder.LORA_TARGETS:
                layer = getattr(block, t)
                layer.lora_A["default"].weight.copy_(torch.from_numpy(np.asarray(x[f"lora.{i}.{t}.a"], dtype=np.float32)))
                layer.lora_B["default"].weight.copy_(torch.from_numpy(np.asarray(x[f"lora.{i}.{t}.b"], dtype=np.float32)))
    return "peft LoRA"


def _adamw(params: list[nn.Parameter], lr: float) -> tuple[torch.optim.Optimizer, str]:
    o = decoder.OPTIMIZER
    kw = dict(lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    try:
        return torch.optim.AdamW(params, fused=True, **kw), "AdamW(fused=True)"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, **kw), "AdamW"


def prepare_training(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], lora: bool) -> Prepared:
    device = adapter.device
    model = Decoder(x, p, device.type)
    how = _add_lora(model, x, p) if lora else "full model"
    model.to(device)
    params = [q for q in model.parameters() if q.requires_grad]
    opt, opt_name = _adamw(params, p["lr"])
    tokens = torch.from_numpy(np.asarray(x["tokens"], dtype=np.int64)).to(device)
    batches = [decoder.split_batch(tokens[i]) for i in range(tokens.shape[0])]
    forward, how_run = model, "eager"
    if adapter.compiled:
        forward, how_run = torch_compile(adapter, model)
    cuda_graphs = adapter.compiled and adapter.backend == "cuda"

    def step(i: int) -> torch.Tensor:
        inputs, targets = batches[i]
        if cuda_graphs:  # a new training iteration for CUDA-graph trees
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            loss = forward(inputs, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def frozen() -> dict[str, np.ndarray]:
        return {n: t.detach().float().cpu().numpy() for n, t in model.named_parameters() if not t.requires_grad}

    return training_prepared(
        step,
        loss_of=lambda out: float(out),
        steps=p["steps"],
        implementation=f"{how_run} torch.autocast(bf16) + torch.optim.{opt_name}; {how}",
        trainable_params=sum(q.numel() for q in params),
        frozen=frozen if lora else None,
        mode=adapter.mode,
    )


prepare_train_step, prepare_lora = training_entry_points(prepare_training)
