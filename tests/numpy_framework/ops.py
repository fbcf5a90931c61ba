"""The workloads the NumPy framework implements: found by `Adapter.prepare` as
`prepare_<workload>(adapter, params, dtype, inputs)`; any other workload is unsupported."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bench.frameworks.base import Prepared


def prepare_matmul(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
    a, b = adapter.asarray(x["a"], dtype), adapter.asarray(x["b"], dtype)
    return Prepared(lambda: np.matmul(a, b), "numpy.matmul")
