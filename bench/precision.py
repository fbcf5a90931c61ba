"""Number formats, rounding, and the classifier that says which precision really ran.

A dtype label is a request; the error against the float64 reference is the witness.
TF32 and fp16 keep 10 mantissa bits, bf16 keeps 7, fp32 keeps 23; rounding inputs to
those widths moves the relative error of a product to about the format's unit
roundoff u = 2**-(bits+1), independent of the problem size, while fp32's own
accumulation error grows only slowly with K. A multi-stage op (attention rounds its
probabilities, then its output) lands near 1 u of its format; a bf16 one at >= 0.3 u_bf16
= 2.4 u of a 10-bit format. The boundaries below sit between those, and they separate
the classes cleanly (see tests/test_precision.py,
which simulates TF32 and bf16 by rounding fp32 operands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from workloads import parallel


@dataclass(frozen=True)
class Format:
    """A dtype as the suite means it: how it is stored and how finely it computes."""

    name: str
    storage: str  # numpy-visible storage: float32 or float16 (bf16 travels as float32)
    itemsize: int
    mantissa_bits: int


FORMATS: dict[str, Format] = {
    "fp32": Format("fp32", "float32", 4, 23),
    "tf32": Format("tf32", "float32", 4, 10),  # fp32 storage, reduced-precision matrix math
    "fp16": Format("fp16", "float16", 2, 10),
    "bf16": Format("bf16", "float32", 2, 7),
}
DTYPES = tuple(FORMATS)

# Expected effective precision class for each requested dtype.
EXPECTED_CLASS = {"fp32": "fp32-class", "tf32": "tf32-class", "fp16": "fp16-class", "bf16": "bf16-class"}

_U_10BIT = 2.0**-11
_U_BF16 = 2.0**-8
# Boundaries, in normwise relative error (see the module docstring):
FP32_CLASS_MAX = _U_10BIT / 8  # ~6.1e-5: fp32 accumulation stays far below this for K up to ~1e6
TEN_BIT_CLASS_MAX = 1.5 * _U_10BIT  # ~7.3e-4: a few roundings at 10 bits (fp16 SDPA: ~1 u)
BF16_CLASS_MAX = 4 * _U_BF16  # ~1.6e-2; beyond this no standard format explains the error


def round_mantissa(x: np.ndarray, bits: int) -> np.ndarray:
    """Round float32 values to `bits` explicit mantissa bits, round-to-nearest-even.

    Keeps fp32's exponent range, which is exactly bf16 (7 bits) and TF32 (10 bits).
    Pure NumPy so a worker needs no ml_dtypes to produce bf16-exact inputs.
    """
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    drop = 23 - bits
    if drop <= 0:
        return x32.copy()
    # In uint32, in place in one new array: the bits of a finite float plus at most 2^drop
    # stay below 2^32 (the largest, -max, is 0xFF7FFFFF), so nothing wraps; non-finite
    # values (which could) are put back afterwards. A 0.5B model's weights are rounded
    # here; the uint64 form with its eight temporaries took ~20 s of a case's set-up.
    u = x32.view(np.uint32)
    out = u >> np.uint32(drop)
    out &= np.uint32(1)
    out += np.uint32((1 << (drop - 1)) - 1)
    out += u
    out >>= np.uint32(drop)
    out <<= np.uint32(drop)
    rounded = out.view(np.float32)
    special = ~np.isfinite(x32)
    if special.any():
        rounded[special] = x32[special]
    return rounded


def to_storage(x: np.ndarray, dtype: str) -> np.ndarray:
    """The array a framework receives for `dtype`: exactly representable in it."""
    fmt = FORMATS[dtype]
    if fmt.name == "fp16":
        return np.asarray(x, dtype=np.float16)
    if fmt.name == "bf16":
        return round_mantissa(x, 7)
    return np.asarray(x, dtype=np.float32)


def stored_inputs(arrays: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """A case's inputs as every framework receives them for `dtype`: float arrays through
    to_storage, integer arrays (token ids) unrounded (they are data, not numbers in the
    dtype), the arrays side by side (workloads.parallel: a 0.5B model is seconds per pass)."""
    return parallel.map_values(lambda v: v if v.dtype.kind in "iu" else to_storage(v, dtype), arrays)


@dataclass(frozen=True)
class ErrorReport:
    max_rel_error: float  # max |y - ref| / max |ref|
    rel_rms_error: float  # ||y - ref||_2 / ||ref||_2: what the classifier reads
    effective_precision: str
    precision_matches: bool | None  # None: the output cannot witness a format (see compare)
    within_tolerance: bool

    @property
    def correct(self) -> bool:
        return self.within_tolerance and self.precision_matches is not False


def classify(rel_rms_error: float, dtype: str) -> str:
    """Map a measured normwise relative error to the precision class that explains it."""
    if not np.isfinite(rel_rms_error):
        return "non-finite"
    ten_bit = "fp16-class" if FORMATS[dtype].storage == "float16" else "tf32-class"
    if rel_rms_error <= FP32_CLASS_MAX and FORMATS[dtype].storage == "float32":
        return "fp32-class"
    if rel_rms_error <= TEN_BIT_CLASS_MAX:
        return ten_bit
    if rel_rms_error <= BF16_CLASS_MAX:
        return "bf16-class"
    return "below-bf16"


def precision_matches(effective: str, dtype: str) -> bool:
    """True when the measured class is the one the dtype promises.

    bf16 rows may measure finer than bf16 (a kernel that upcasts is still a bf16 row);
    fp32 and tf32 must be exactly their class: fp32 measuring tf32-class is the silent
    reduced-precision case the classifier exists to catch, and tf32 measuring fp32-class
    means the fast mode never engaged.
    """
    expected = EXPECTED_CLASS[dtype]
    if dtype == "bf16":
        return effective in {"bf16-class", "fp16-class", "tf32-class", "fp32-class"}
    if dtype == "fp16":
        return effective in {"fp16-class", "fp32-class"}
    return effective == expected


def compare(output: np.ndarray, reference: np.ndarray, dtype: str, tolerance: float, classify_precision: bool = True) -> ErrorReport:
    """Error of `output` against the float64 `reference`, and the precision it reveals.

    With `classify_precision=False` (a scalar loss, whose error averages many roundings
    away and so cannot say which format ran) only the tolerance is judged: the report
    says "not-classified" and `precision_matches` is None rather than a claim.
    """
    y = np.asarray(output, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"output shape {y.shape} does not match reference shape {ref.shape}")
    diff = y - ref
    scale = float(np.max(np.abs(ref))) or 1.0
    max_rel = float(np.max(np.abs(diff))) / scale if diff.size else 0.0
    norm = float(np.linalg.norm(ref)) or 1.0
    rms_rel = float(np.linalg.norm(diff)) / norm
    if not np.all(np.isfinite(y)):
        max_rel = rms_rel = float("inf")
    effective = classify(rms_rel, dtype) if classify_precision else "not-classified"
    return ErrorReport(
        max_rel_error=max_rel,
        rel_rms_error=rms_rel,
        effective_precision=effective,
        precision_matches=precision_matches(effective, dtype) if classify_precision else None,
        within_tolerance=bool(max_rel <= tolerance),
    )
