"""Weight-only quantized matmul y = x·dequant(Wq)ᵀ: how LLMs fit in unified memory.

x is fp16/bf16 (M, K); W (N, K) is stored as int8 or int4 codes with group-wise scales
(see workloads.quant for the schemes). The reference is the float64 product with the
*dequantized* weight, so the check and the precision classifier judge the kernel's
arithmetic, not the quantizer; what quantization itself costs (the error against the
unquantized product) is recorded apart in `metrics` as `quant_error`.

Inputs also carry the unquantized `w`, used only for that figure; adapters must build
their operands from `q`, `scale` and `bias`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workloads import quant
from workloads.base import Inputs, Params, Workload

CHECK_ROWS = 64


def _weight_bytes(p: Params, itemsize: int) -> float:
    """Packed codes plus one scale and one bias per group, in the activation dtype."""
    return p["n"] * p["k"] * p["bits"] / 8 + 2 * p["n"] * (p["k"] // p["group"]) * itemsize


def _flops(p: Params) -> float:
    return 2.0 * p["m"] * p["n"] * p["k"]


def _bytes(p: Params, itemsize: int) -> float:
    return float(_weight_bytes(p, itemsize) + itemsize * (p["m"] * p["k"] + p["m"] * p["n"]))


def _rates(p: Params, itemsize: int) -> dict[str, float]:
    """Effective weight bandwidth: decode-sized M is bound by reading the weight."""
    return {"weight_gbps": _weight_bytes(p, itemsize) / 1e9}


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    w = rng.standard_normal((p["n"], p["k"]))
    q, scale, bias = quant.quantize(w, p["bits"], p["scheme"], p["group"])
    return {"x": rng.uniform(-1.0, 1.0, size=(p["m"], p["k"])), "w": w, "q": q, "scale": scale, "bias": bias}


def _reference(x: Inputs, p: Params) -> np.ndarray:
    a = np.asarray(x["x"][:CHECK_ROWS], dtype=np.float64)
    return a @ quant.dequantize(x["q"], x["scale"], x["bias"]).T


def _assess(output: np.ndarray, x: Inputs, p: Params, dtype: str, metrics: dict[str, Any], extras: Inputs) -> list[str]:
    """Quantization error against the unquantized weight: the kernel's output and the
    scheme alone (float64 product with the dequantized weight), both normwise relative."""
    a = np.asarray(x["x"][:CHECK_ROWS], dtype=np.float64)
    exact = a @ np.asarray(x["w"], dtype=np.float64).T
    norm = float(np.linalg.norm(exact)) or 1.0
    metrics["quant_error"] = float(np.linalg.norm(np.asarray(output, dtype=np.float64) - exact)) / norm
    metrics["scheme_error"] = float(np.linalg.norm(_reference(x, p) - exact)) / norm
    metrics["scheme"] = f"{p['scheme']} int{p['bits']} g{p['group']}"
    return []


def _case(m: int, n: int, k: int, bits: int, scheme: str = "affine", group: int = 64) -> dict[str, Any]:
    return {"m": m, "n": n, "k": k, "bits": bits, "scheme": scheme, "group": k if scheme == "symmetric" else group}


QMATMUL = Workload(
    name="qmatmul",
    summary="weight-only int8/int4 matmul, group-wise affine (g=64) or per-channel symmetric",
    dtypes=("fp16", "bf16"),
    suites={
        "quick": [_case(8, 512, 512, 8, "symmetric"), _case(8, 512, 512, 4)],
        "full": [
            *(_case(m, 4096, 4096, bits) for m in (1, 32, 512) for bits in (8, 4)),
            *(_case(m, 4096, 4096, 8, "symmetric") for m in (1, 32, 512)),
            _case(1, 11008, 4096, 4),
            _case(512, 11008, 4096, 4),
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance={"fp16": 1e-2, "bf16": 3e-2},
    check_index=lambda p: (slice(0, CHECK_ROWS),),
    assess=_assess,
    rates=_rates,
    depends_on=(quant,),
)
