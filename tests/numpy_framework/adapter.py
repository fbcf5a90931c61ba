"""NumPy as a benchmarked framework: CPU only, eager, nothing to wait for."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.frameworks.base import Adapter, PeakMemory

_DTYPES = {"fp32": np.float32, "fp16": np.float16}


class NumpyAdapter(Adapter):
    name = "numpy"

    def available_backends(self) -> list[str]:
        return ["cpu"]

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def threads(self) -> int | None:
        return None  # NumPy's BLAS decides

    def set_math_mode(self, dtype: str) -> str:
        return "numpy (no math-mode switch)"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        if dtype not in _DTYPES:
            raise NotImplementedError(f"numpy has no {dtype}")
        return np.ascontiguousarray(x, dtype=_DTYPES[dtype])

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out, dtype=np.float32)

    def barrier(self, out: Any) -> None:
        """NumPy returns when the work is done: there is nothing to wait for."""

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> PeakMemory:
        return PeakMemory(None, "NumPy keeps no allocator statistics; see peak_rss_bytes")
