"""MLX adapter: Metal on Apple Silicon, CUDA (mlx-cuda), CPU (mlx-cpu).

MLX is lazy: an array that is never evaluated was never computed, so the barrier is
`mx.eval(out)` and each call rebuilds the graph on the same inputs (re-evaluating an
evaluated array times nothing). Queued calls are started with `mx.async_eval` and closed
by one `mx.eval` of the last output: calls on one stream run in order.

API facts (ml-explore/mlx python/src): `mx.metal.is_available()`, `mx.cuda.is_available()`
(since v0.29); memory counters moved from `mx.metal.*` to top level in v0.24.1 (mlx#1982),
so `_mx` looks in both. `MLX_ENABLE_TF32` (docs/src/usage/precision.rst, v0.26.2+) is
read from the environment, so the runner starts MLX workers with it set per dtype (see
bench.catalog) and this adapter only checks that it holds what the dtype needs.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable, Mapping

import mlx.core as mx
import numpy as np

from bench.frameworks.base import Adapter, PeakMemory, Placement, Prepared, Unsupported, dist_versions

_DTYPES = {"fp32": mx.float32, "tf32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}
_DEVICES = {"metal": mx.gpu, "cuda": mx.gpu, "cpu": mx.cpu}


def _mx(name: str) -> Callable[..., Any]:
    """A memory function from the top level (>= 0.24.1) or mx.metal (older)."""
    fn = getattr(mx, name, None)
    return fn if fn is not None else getattr(mx.metal, name)


def _metal_has_tf32(architecture: str) -> bool:
    """MLX routes fp32 matmul to the neural accelerators ("NAX") from GPU generation 17
    (Apple M5: 'applegpu_g17g', M5 Max 'applegpu_g17s'; M1 is g13, M4 g16) on macOS >= 26.2
    (mlx/backend/metal/device.cpp is_nax_available; ml-explore/mlx #3860, #3534, #4411)."""
    m = re.search(r"applegpu_g(\d+)", architecture)
    return bool(m and int(m.group(1)) >= 17)


class MLXAdapter(Adapter):
    name = "mlx"
    quick_suite_skips = {("compiled", "cpu"): "mx.compile on mlx-cpu generates C++ and runs the system compiler (~30 s per step function on 2 cores)"}

    def available_backends(self) -> list[str]:
        found = []
        if mx.metal.is_available():
            found.append("metal")
        cuda = getattr(mx, "cuda", None)
        if cuda is not None and cuda.is_available():
            found.append("cuda")
        return found + ["cpu"]

    def missing_reason(self, backend: str) -> str:
        if backend == "metal":
            return "mx.metal.is_available() is False (Metal exists only on Apple Silicon macOS)"
        if backend == "cuda":
            return "mx.cuda.is_available() is False" if getattr(mx, "cuda", None) else "this mlx has no CUDA backend (mlx[cuda])"
        return super().missing_reason(backend)

    def activate_backend(self) -> None:
        mx.set_default_device(_DEVICES[self.backend])

    def threads(self) -> int | None:
        """The mlx-cpu wheel on Linux runs each stream on one thread over the reference
        (unthreaded) BLAS, whatever OMP_NUM_THREADS says; Accelerate on macOS threads itself."""
        return 1 if self.backend == "cpu" and sys.platform != "darwin" else None

    def device_name(self) -> str:
        info = mx.device_info() if hasattr(mx, "device_info") else {}
        return str(info.get("device_name") or info.get("architecture") or self.backend)

    def versions(self) -> dict[str, str]:
        return {"mlx": mx.__version__, **dist_versions("mlx-metal", "mlx-cpu", "mlx-cuda-12", "mlx-cuda-13", "mlx-cuda")}

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal" and not _metal_has_tf32(str(mx.device_info().get("architecture", ""))):
            return "Apple M1-M4 GPUs have no reduced-precision fp32 matrix units (MLX uses them from M5 on)"
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        wanted = "1" if dtype == "tf32" else "0"
        have = os.environ.get("MLX_ENABLE_TF32", "1")
        if have != wanted:
            raise Unsupported(f"worker started with MLX_ENABLE_TF32={have}, {dtype} needs {wanted} (runner bug)")
        return f"MLX_ENABLE_TF32={wanted}"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        arr = mx.array(np.ascontiguousarray(x)).astype(_DTYPES[dtype])
        mx.eval(arr)
        return arr

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.array(out.astype(mx.float32))

    def barrier(self, out: Any) -> None:
        mx.eval(out)

    def enqueue(self, out: Any) -> None:
        mx.async_eval(out)

    def matmul(self, a: Any, b: Any) -> Any:
        return mx.matmul(a, b)

    def placement(self, out: Any) -> Placement:
        """MLX arrays carry no device: an op runs on the stream it is given, by default the
        default device's. So the check is that the default device is still the selected one
        (`mx.default_device()`, set in activate_backend) when the case's graph was built."""
        device = mx.default_device()
        ok = device == _DEVICES[self.backend]
        return Placement(ok, f"default device (and stream) {device}, selected {_DEVICES[self.backend]}")

    def reset_peak_memory(self) -> None:
        _mx("reset_peak_memory")()

    def peak_memory(self) -> PeakMemory:
        return PeakMemory(int(_mx("get_peak_memory")()), "mx.get_peak_memory (MLX allocator)")

    def release(self) -> None:
        _mx("clear_cache")()

    # -- workloads -------------------------------------------------------------------
    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: mx.matmul(a, b), "mx.matmul")

    def prepare_stream(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        v = self.asarray(x["x"], dtype)
        return Prepared(lambda: v * 2, "array * 2")

    def prepare_sdpa(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return self._attention(p, dtype, x, "causal" if p["causal"] else None)

    def prepare_decode_attention(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        """mx.fast.scaled_dot_product_attention takes un-repeated K/V heads (native GQA)."""
        return self._attention(p, dtype, x, None)

    def prepare_bmm(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: mx.matmul(a, b), "mx.matmul (batched)")

    def _attention(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray], mask: str | None) -> Prepared:
        q, k, v = (self.asarray(x[n], dtype) for n in ("q", "k", "v"))
        scale = float(p["head_dim"]) ** -0.5
        fused = "fused" if self.backend != "cpu" else "unfused on CPU"
        return Prepared(
            lambda: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask),
            f"mx.fast.scaled_dot_product_attention ({fused})",
        )

