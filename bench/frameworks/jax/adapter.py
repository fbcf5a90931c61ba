"""JAX adapter: the jax-metal PJRT plugin on Apple Silicon, CUDA, CPU.

Dispatch is asynchronous, so the barrier is `jax.block_until_ready`. Each workload is a
`jax.jit` function compiled before timing (its first call is the compile, timed apart).

Metal facts: jax-metal 0.1.1 registers the PJRT plugin "METAL" and needs jax==jaxlib==0.5.0
(jax#26968); community plugins name themselves "mps" or "mtl", so any of the three counts
as Metal. `Device.memory_stats()` is None on CPU and has no peak reset (jax#8096): the
adapter reports a peak only when it rose during the case, which makes it this case's own.
fp32 dots default to TF32 on GPUs that have it, so fp32 forces
`jax_default_matmul_precision="highest"` (docs "Matmul precision").
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.frameworks.base import Adapter, PeakMemory, Prepared, dist_versions

_METAL_PLATFORMS = {"metal", "mps", "mtl"}
_DTYPES = {"fp32": jnp.float32, "tf32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}
_PRECISION = {"fp32": "highest", "tf32": "tensorfloat32"}


def _platform_backend(platform: str) -> str:
    p = platform.lower()
    if p in _METAL_PLATFORMS:
        return "metal"
    if p in {"gpu", "cuda"}:
        return "cuda"
    return p


class JaxAdapter(Adapter):
    name = "jax"
    # JAX's eager mode compiles every primitive it meets on first use: 34 s before the first
    # tiny train step on a 2-core CPU (then 240 ms a step against 4.6 ms under jax.jit).
    quick_suite_skips = {("eager", "cpu"): "op-by-op JAX compiles each primitive on first use (~35 s for the tiny train step on 2 cores)"}

    def configure_threads(self, threads: int | None) -> None:
        if threads:  # XLA:CPU sizes its pool from PJRT_NPROC when the backend starts (lazily, after this)
            os.environ["PJRT_NPROC"] = str(threads)

    def _devices_by_backend(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for platform in ("metal", "mps", "mtl", "cuda", "gpu", "cpu"):
            try:
                devices = jax.devices(platform)
            except (RuntimeError, ValueError):  # "Unknown backend" for platforms not installed
                continue
            if devices:
                found.setdefault(_platform_backend(devices[0].platform), devices[0])
        return found

    def available_backends(self) -> list[str]:
        self._devices = self._devices_by_backend()
        return [b for b in ("metal", "cuda", "cpu") if b in self._devices]

    def activate_backend(self) -> None:
        self.device = self._devices[self.backend]
        jax.config.update("jax_default_device", self.device)
        self._peak_before: int | None = None

    def threads(self) -> int | None:
        if self.backend != "cpu":
            return None
        return int(os.environ.get("PJRT_NPROC") or os.cpu_count() or 1)

    def device_name(self) -> str:
        return str(getattr(self.device, "device_kind", self.device.platform))

    def versions(self) -> dict[str, str]:
        return {"jax": jax.__version__, **dist_versions("jaxlib", "jax-metal", "jax-cuda12-plugin", "jax-cuda13-plugin")}

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal":
            return "jax-metal exposes no TF32-class fp32 matmul mode"
        if self.backend == "cuda":
            cc = getattr(self.device, "compute_capability", "8.0")
            if float(cc) < 8.0:
                return "TF32 needs an NVIDIA GPU of compute capability 8.0 or newer"
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        precision = _PRECISION.get(dtype, "default")
        jax.config.update("jax_default_matmul_precision", None if precision == "default" else precision)
        return f"jax_default_matmul_precision={precision}"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return jax.device_put(jnp.asarray(np.ascontiguousarray(x), dtype=_DTYPES[dtype]), self.device)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out.astype(jnp.float32))

    def barrier(self, out: Any) -> None:
        # An array's own method skips the pytree walk of jax.block_until_ready (a few µs
        # a call, 5% of a small op's latency); trees (a training step's outputs) take the walk.
        wait = getattr(out, "block_until_ready", None)
        if wait is not None:
            wait()
        else:
            jax.block_until_ready(out)

    def unsupported_reason(self, exc: BaseException) -> str | None:
        """XLA refuses some dtype/op combinations per backend (e.g. fp16 dot_general with
        fp32 accumulation on XLA:CPU, what jitted fp16 attention lowers to)."""
        text = str(exc)
        if isinstance(exc, (ValueError, NotImplementedError)) or "UNIMPLEMENTED" in text:
            if "not supported" in text or "UNIMPLEMENTED" in text or "not implemented" in text.lower():
                return f"XLA on {self.backend}: {text.strip().splitlines()[0]}"
        return super().unsupported_reason(exc)

    def _peak_in_use(self) -> int | None:
        stats = self.device.memory_stats() if hasattr(self.device, "memory_stats") else None
        return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None

    def reset_peak_memory(self) -> None:
        try:
            self._peak_before = self._peak_in_use()
        except Exception:  # plugins without memory_stats raise anything from NotImplemented to XlaRuntimeError
            self._peak_before = None

    def peak_memory(self) -> PeakMemory:
        try:
            after = self._peak_in_use()
        except Exception as exc:
            return PeakMemory(None, f"memory_stats failed on {self.device.platform}: {exc}")
        if after is None:
            return PeakMemory(None, f"jax reports no memory statistics on {self.device.platform}; see peak_rss_bytes")
        if self._peak_before is None or after > self._peak_before:
            return PeakMemory(after, "peak_bytes_in_use (set during this case)")
        return PeakMemory(None, "jax cannot reset its peak (jax#8096) and this case stayed below an earlier case's peak")

    # -- workloads -------------------------------------------------------------------
    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        fn = jax.jit(jnp.matmul)
        return Prepared(lambda: fn(a, b), "jax.jit(jnp.matmul)")

    def prepare_stream(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        v = self.asarray(x["x"], dtype)
        fn = jax.jit(lambda v: v * 2)
        return Prepared(lambda: fn(v), "jax.jit(x * 2)")

    def prepare_sdpa(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        # jax.nn.dot_product_attention takes (batch, seq, heads, dim): transpose outside the timed call.
        q, k, v = (self.asarray(np.swapaxes(x[n], 1, 2), dtype) for n in ("q", "k", "v"))
        causal = bool(p["causal"])
        impl = self._sdpa_implementation(q, k, v, causal)
        fn = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation=impl))
        return Prepared(
            lambda: fn(q, k, v),
            f"jax.nn.dot_product_attention(implementation={impl!r})",
            checked=lambda out: jnp.swapaxes(out, 1, 2),  # back to (B, H, S, D), outside the timed call
        )

    def _sdpa_implementation(self, q: Any, k: Any, v: Any, causal: bool) -> str | None:
        """cuDNN's fused kernel where it accepts the case (5x XLA's on H100), else XLA."""
        if self.backend != "cuda":
            return None
        try:
            jax.block_until_ready(jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation="cudnn"))
            return "cudnn"
        except Exception:
            return "xla"

