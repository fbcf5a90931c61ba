"""PyTorch adapter: mps on Apple Silicon, cuda, cpu.

Backend specifics live in `_Backend` below and nowhere else. Metal API facts (torch
docs "torch.mps", "MPS backend"): `torch.backends.mps.is_available()` is the usable
check (`is_built()` only says it was compiled in); `torch.mps.synchronize()` waits for
all MPS streams; MPS has no peak-memory counter before torch's accelerator API wired its
allocator in (pytorch#186748), so the adapter tries `torch.accelerator` and otherwise
records null with the reason. `PYTORCH_ENABLE_MPS_FALLBACK` is never set: a missing op
must raise (and be recorded as unsupported), not run silently on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from bench.frameworks.base import Adapter, PeakMemory, Prepared

_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class _Backend:
    device: str
    synchronize: Callable[[], None]
    reset_peak: Callable[[], None]
    peak: Callable[[], PeakMemory]
    empty_cache: Callable[[], None]


def _accelerator_peak(device: str) -> PeakMemory:
    """torch.accelerator's counters (MPS support arrived with pytorch#186748)."""
    try:
        return PeakMemory(int(torch.accelerator.max_memory_allocated()), "torch.accelerator.max_memory_allocated")
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        return PeakMemory(None, f"no peak-memory counter for {device} in torch {torch.__version__}: {exc}")


def _accelerator_reset() -> None:
    try:
        torch.accelerator.reset_peak_memory_stats()
    except (AttributeError, RuntimeError, NotImplementedError):
        pass


def _noop() -> None:
    return None


_BACKENDS: dict[str, Callable[[], _Backend]] = {
    "metal": lambda: _Backend("mps", torch.mps.synchronize, _accelerator_reset, lambda: _accelerator_peak("mps"), torch.mps.empty_cache),
    "cuda": lambda: _Backend(
        "cuda",
        torch.cuda.synchronize,
        torch.cuda.reset_peak_memory_stats,
        lambda: PeakMemory(int(torch.cuda.max_memory_allocated()), "torch.cuda.max_memory_allocated"),
        torch.cuda.empty_cache,
    ),
    "cpu": lambda: _Backend(
        "cpu", _noop, _noop, lambda: PeakMemory(None, "torch's CPU allocator keeps no statistics; see peak_rss_bytes"), _noop
    ),
}


class TorchAdapter(Adapter):
    name = "torch"
    quick_suite_skips = {("compiled", "cpu"): "torch.compile's inductor builds C++ for the CPU (~100 s before the tiny decode step first runs on 2 cores)"}

    def available_backends(self) -> list[str]:
        found = []
        if torch.backends.mps.is_available():
            found.append("metal")
        if torch.cuda.is_available():
            found.append("cuda")
        return found + ["cpu"]

    def activate_backend(self) -> None:
        self._b = _BACKENDS[self.backend]()
        self.device = torch.device(self._b.device)

    def configure_threads(self, threads: int | None) -> None:
        if threads:
            torch.set_num_threads(threads)

    def threads(self) -> int | None:
        return torch.get_num_threads()

    def device_name(self) -> str:
        if self.backend == "cuda":
            return torch.cuda.get_device_name()
        if self.backend == "metal":
            get_name = getattr(torch.backends.mps, "get_name", None)
            return get_name() if get_name else "Apple GPU (mps)"
        from bench.machine import cpu_name

        return cpu_name()

    def versions(self) -> dict[str, str]:
        extra = {"cuda": torch.version.cuda or ""} if self.backend == "cuda" else {}
        return {"torch": torch.__version__, **extra}

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal":
            return "torch has no TF32-class fp32 matmul mode on MPS"
        if self.backend == "cuda" and torch.cuda.get_device_capability() < (8, 0):
            return "TF32 needs an NVIDIA GPU of compute capability 8.0 or newer"
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        precision = "high" if dtype == "tf32" else "highest"
        torch.set_float32_matmul_precision(precision)
        if self.backend == "cuda":
            torch.backends.cudnn.allow_tf32 = dtype == "tf32"
        return f"torch.set_float32_matmul_precision('{precision}')"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device=self.device, dtype=_DTYPES[dtype])

    def to_numpy(self, out: Any) -> np.ndarray:
        return out.detach().to("cpu", torch.float32).numpy()

    def barrier(self, out: Any) -> None:
        self._b.synchronize()

    def unsupported_reason(self, exc: BaseException) -> str | None:
        """torch says "... not implemented for 'Half'" (RuntimeError) or raises
        NotImplementedError for an op missing on MPS; both mean the backend lacks a kernel."""
        if isinstance(exc, RuntimeError) and "not implemented for" in str(exc):
            return str(exc).strip().splitlines()[0]
        if type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):  # the compiler itself failed here
            return f"torch.compile failed on {self.backend}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:400]
        return super().unsupported_reason(exc)

    def reset_peak_memory(self) -> None:
        self._b.reset_peak()

    def peak_memory(self) -> PeakMemory:
        return self._b.peak()

    def release(self) -> None:
        self._b.empty_cache()

    # -- workloads -------------------------------------------------------------------
    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: torch.matmul(a, b), "torch.matmul")

    def prepare_stream(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        v = self.asarray(x["x"], dtype)
        return Prepared(lambda: v * 2, "tensor * 2")

    def prepare_sdpa(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        q, k, v = (self.asarray(x[n], dtype) for n in ("q", "k", "v"))
        causal = bool(p["causal"])
        return Prepared(
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
            "torch.nn.functional.scaled_dot_product_attention (dispatcher's choice of kernel)",
        )

