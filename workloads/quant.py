"""Weight-only quantization, defined once: the quantizer, its inverse, and bit packings.

Every framework receives the same integer codes and the same scales, so the reference
(float64 product with the *dequantized* weight) is identical for all of them and any
remaining error is the framework's kernel. The canonical form is unsigned codes with an
affine map, w ≈ q·scale + bias, scale and bias per group of `group` columns along K:

* ``affine``: scale = (max − min)/(2^bits − 1), bias = min, per group (MLX's format;
  torch's int4 "tinygemm" form (q − 8)·scale + zero is the same with zero = bias + 8·scale).
* ``symmetric``: one group spanning K (per output channel), scale = amax/(2^(bits−1) − 1),
  signed codes stored offset by 2^(bits−1), so bias = −2^(bits−1)·scale exactly. This is
  what ``torch._weight_int8pack_mm`` (int8 codes, one scale per row) can run.

Adapters only convert this form to their kernel's layout; nothing here imports a framework.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("affine", "symmetric")


def quantize(w: np.ndarray, bits: int, scheme: str, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (N, K) as integers in [0, 2^bits) held in w's float type (float32 weights stay
    float32, anything else is float64), scale and bias (N, K/group) in the same type. The
    codes are computed in one array, in place (a 0.5B model's linears are ~0.4 billion
    weights: each temporary of the plain expression is gigabytes)."""
    n, k = w.shape
    if k % group:
        raise ValueError(f"K={k} is not a multiple of the group size {group}")
    levels = 2**bits - 1
    dtype = np.float32 if np.asarray(w).dtype == np.float32 else np.float64
    wg = np.asarray(w, dtype=dtype).reshape(n, k // group, group)
    if scheme == "affine":
        lo, hi = wg.min(axis=-1), wg.max(axis=-1)
        scale = np.where(hi > lo, (hi - lo) / dtype(levels), dtype(1.0)).astype(dtype)
        q = wg - lo[..., None]
        q /= scale[..., None]
        np.rint(q, out=q)
        np.clip(q, 0, levels, out=q)
        bias = lo
    elif scheme == "symmetric":
        if group != k:
            raise ValueError("the symmetric scheme is per output channel: group must equal K")
        half = 2 ** (bits - 1)
        amax = np.abs(wg).max(axis=-1)
        scale = np.where(amax > 0, amax / (half - 1), 1.0)
        q = np.clip(np.rint(wg / scale[..., None]), -half, half - 1) + half
        bias = -half * scale
    else:
        raise ValueError(f"unknown scheme {scheme!r} (choose from: {', '.join(SCHEMES)})")
    return q.reshape(n, k), scale, bias


def dequantize(q: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """w = q·scale + bias, group-wise along K; float64."""
    n, k = q.shape
    groups = scale.shape[1]
    qg = np.asarray(q, dtype=np.float64).reshape(n, groups, k // groups)
    return (qg * scale[..., None] + bias[..., None]).reshape(n, k)


def expand_groups(a: np.ndarray, k: int, group: int) -> np.ndarray:
    """Per-group scales/biases re-expressed for a finer group size (exact: repetition),
    for kernels whose group sizes cannot span a whole row (MLX: 32, 64 or 128)."""
    current = k // a.shape[1]
    if current % group:
        raise ValueError(f"group {current} cannot be split into groups of {group}")
    return np.repeat(a, current // group, axis=1)


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    """4-bit codes (N, K) → uint8 (N, K/2), even k in the high nibble (torch's CUDA/MPS
    `_convert_weight_to_int4pack` input layout, pytorch/ao#1389); also what the JAX and
    TensorFlow adapters store and unpack inside their compiled functions."""
    q8 = np.asarray(q, dtype=np.uint8)
    return (q8[:, 0::2] << 4) | q8[:, 1::2]


def pack_uint32(q: np.ndarray, bits: int) -> np.ndarray:
    """Codes (N, K) → uint32 (N, K·bits/32), element j of each word at bit bits·j
    (MLX's affine layout; checked against `mx.dequantize` in the tests)."""
    per_word = 32 // bits
    n, k = q.shape
    qr = np.asarray(q, dtype=np.uint32).reshape(n, k // per_word, per_word)
    packed = np.zeros((n, k // per_word), dtype=np.uint32)
    for j in range(per_word):
        packed |= qr[:, :, j] << np.uint32(bits * j)
    return packed
