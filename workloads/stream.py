"""STREAM-style scale, y = 2·x: the suite's own memory-bandwidth calibration.

One read and one write per element and almost no arithmetic, so its GB/s is the
bandwidth ceiling of the roofline (bench.roofline) next to the best matmul's FLOP/s.
Scaling by two is exact in every format, so any error at all means a wrong result.
"""

from __future__ import annotations

import numpy as np

from workloads.base import Inputs, Params, Workload


def _reference(x: Inputs, p: Params) -> np.ndarray:
    return 2.0 * np.asarray(x["x"], dtype=np.float64)


STREAM = Workload(
    name="stream",
    summary="y = 2·x over a large vector: memory bandwidth (roofline calibration)",
    dtypes=("fp32", "fp16", "bf16"),
    suites={"quick": [{"n": 1 << 22}], "full": [{"n": 1 << 28}]},
    flops=lambda p: float(p["n"]),
    bytes_moved=lambda p, itemsize: float(2 * itemsize * p["n"]),
    make_inputs=lambda p, rng: {"x": rng.uniform(-1.0, 1.0, size=p["n"])},
    reference=_reference,
    tolerance={"fp32": 0.0, "tf32": 0.0, "fp16": 0.0, "bf16": 0.0},
)
