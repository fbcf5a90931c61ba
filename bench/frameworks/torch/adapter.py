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

from bench.frameworks.base import Adapter, PeakMemory, Placement, Prepared, leaves, tf32_needs_ampere
from bench.measure import DeviceEvents

# torch.cuda._sleep spins for a number of GPU clock cycles; 2.5e9/s is above any
# datacenter GPU's boost clock, so the filler lasts at least as long as asked (longer is harmless:
# it ends before the start event).
_SLEEP_CYCLES_PER_S = 2.5e9

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
        peak = int(torch.accelerator.max_memory_allocated())
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        return PeakMemory(None, f"no peak-memory counter for {device} in torch {torch.__version__}: {exc}")
    if peak <= 0:  # a case allocated tensors on the device: 0 is "no statistics", not "no memory"
        return PeakMemory(None, f"torch.accelerator.max_memory_allocated() is 0 on {device}: memory_stats() is empty "
                                "while the allocator is not initialised (torch/accelerator/memory.py); see peak_rss_bytes")
    return PeakMemory(peak, "torch.accelerator.max_memory_allocated")


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

    def missing_reason(self, backend: str) -> str:
        if backend == "metal":
            return f"torch.backends.mps.is_available() is False (is_built: {torch.backends.mps.is_built()})"
        if backend == "cuda":
            return f"torch.cuda.is_available() is False (built with CUDA: {torch.version.cuda or 'no'})"
        return super().missing_reason(backend)

    def activate_backend(self) -> None:
        self._b = _BACKENDS[self.backend]()
        self.device = torch.device(self._b.device)

    def configure_threads(self, threads: int | None) -> None:
        if threads:
            torch.set_num_threads(threads)

    def threads(self) -> int | None:
        return torch.get_num_threads()

    def compile_cache(self) -> str:
        """Inductor's FX graph cache, on by default (torch/_inductor/config.py: fx_graph_cache,
        forced by TORCHINDUCTOR_FX_GRAPH_CACHE), in TORCHINDUCTOR_CACHE_DIR or
        <tmp>/torchinductor_<user> (runtime/cache_dir_utils.py). Read from the environment, as
        inductor does, so torch._inductor is not imported by processes that never compile."""
        import getpass
        import os
        import re
        import tempfile

        from bench.frameworks.base import describe_cache_dir

        if os.environ.get("TORCHINDUCTOR_FX_GRAPH_CACHE", os.environ.get("TORCHINDUCTOR_FX_GRAPH_CACHE_DEFAULT", "1")) == "0":
            return "none: inductor fx graph cache off (TORCHINDUCTOR_FX_GRAPH_CACHE=0)"
        folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        if folder is None:
            try:
                user = getpass.getuser()
            except (KeyError, ModuleNotFoundError, OSError):
                user = f"uid_{os.getuid()}" if hasattr(os, "getuid") else "unknown_user"
            folder = os.path.join(tempfile.gettempdir(), "torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))
        return describe_cache_dir("inductor fx graph cache", folder)

    def device_name(self) -> str:
        if self.backend == "cuda":
            return torch.cuda.get_device_name()
        if self.backend == "metal":
            get_name = getattr(torch.backends.mps, "get_name", None)
            return get_name() if get_name else "Apple GPU (mps)"
        return super().device_name()

    def versions(self) -> dict[str, str]:
        extra = {"cuda": torch.version.cuda or ""} if self.backend == "cuda" else {}
        return {"torch": torch.__version__, **extra}

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal":
            return "torch has no TF32-class fp32 matmul mode on MPS"
        if self.backend == "cuda":
            return tf32_needs_ampere(torch.cuda.get_device_capability())
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        precision = "high" if dtype == "tf32" else "highest"
        torch.set_float32_matmul_precision(precision)
        if self.backend == "cuda":
            torch.backends.cudnn.allow_tf32 = dtype == "tf32"
        return f"torch.set_float32_matmul_precision('{precision}')"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        """Always a copy in torch's own memory. Without `copy=True` a CPU fp32 tensor shares
        the numpy buffer, which glibc aligns to 16 bytes where torch's allocator aligns to
        64: a 16x1024 @ 1024x1024 sgemm took 1.37x the CPU time on it (2-core VM, 2026-11-29), and a
        user's tensors are torch's own."""
        return torch.from_numpy(np.ascontiguousarray(x)).to(device=self.device, dtype=_DTYPES[dtype], copy=True)

    def to_numpy(self, out: Any) -> np.ndarray:
        return out.detach().to("cpu", torch.float32).numpy()

    def barrier(self, out: Any) -> None:
        self._b.synchronize()

    def matmul(self, a: Any, b: Any) -> Any:
        return torch.matmul(a, b)

    def placement(self, out: Any) -> Placement:
        """Every tensor of the output on the selected device type (`Tensor.device`)."""
        found = sorted({str(t.device) for t in leaves(out) if isinstance(t, torch.Tensor)})
        if not found:
            return Placement(None, "no tensor in the output")
        ok = all(torch.device(d).type == self.device.type for d in found)
        return Placement(ok, f"outputs on {', '.join(found)}, selected {self.device.type}")

    def device_events(self) -> DeviceEvents:
        """torch.cuda.Event / torch.mps.Event (record, synchronize, elapsed_time in ms; the MPS
        class since torch 2.1). On CUDA, `torch.cuda._sleep` keeps the GPU busy while the host
        enqueues the call, so the events bracket the kernel; MPS has no such filler, so its
        figure may include the host's launch gap (the source says so)."""
        if self.backend == "cuda":
            return DeviceEvents(
                lambda: torch.cuda.Event(enable_timing=True),
                "torch.cuda.Event around one call, GPU held busy by torch.cuda._sleep while it is enqueued",
                busy=lambda seconds: torch.cuda._sleep(int(seconds * _SLEEP_CYCLES_PER_S)),
            )
        if self.backend == "metal" and hasattr(torch, "mps") and hasattr(torch.mps, "Event"):
            return DeviceEvents(
                lambda: torch.mps.Event(enable_timing=True),
                "torch.mps.Event around one call (no device filler: may include the launch gap)",
            )
        return super().device_events()

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
        return self._attention(x, dtype, causal=bool(p["causal"]))

    def prepare_decode_attention(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return self._attention(x, dtype, causal=False)

    def _attention(self, x: Mapping[str, np.ndarray], dtype: str, causal: bool) -> Prepared:
        """F.scaled_dot_product_attention; fewer K/V heads than query heads go through
        `enable_gqa=True` (torch >= 2.5), so the kernel reads the cache un-repeated."""
        q, k, v = (self.asarray(x[n], dtype) for n in ("q", "k", "v"))
        name = "torch.nn.functional.scaled_dot_product_attention (dispatcher's choice of kernel)"
        if q.shape[1] == k.shape[1]:
            return Prepared(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), name)
        return Prepared(
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True), name.replace(" (", ", enable_gqa=True (")
        )

    def prepare_bmm(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: torch.bmm(a, b), "torch.bmm")

