"""The classifier names the precision that really ran, from the error alone."""

from __future__ import annotations

import numpy as np
import pytest

from bench.precision import classify, compare, precision_matches, round_mantissa, to_storage


def _operands(k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (64, k)).astype(np.float32), rng.uniform(-1, 1, (k, 64)).astype(np.float32)


def _rel_rms(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("k", [64, 1024, 8192])
def test_fp32_matmul_is_fp32_class(k):
    a, b = _operands(k)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert classify(_rel_rms((a @ b).astype(np.float64), ref), "fp32") == "fp32-class"


@pytest.mark.parametrize("k", [64, 1024, 8192])
def test_simulated_tf32_is_caught_in_an_fp32_row(k):
    a, b = _operands(k)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tf32 = round_mantissa(a, 10).astype(np.float64) @ round_mantissa(b, 10).astype(np.float64)
    assert classify(_rel_rms(tf32, ref), "fp32") == "tf32-class"
    assert not precision_matches("tf32-class", "fp32")
    assert precision_matches("tf32-class", "tf32")


@pytest.mark.parametrize("k", [64, 1024, 8192])
def test_simulated_bf16_operands_are_bf16_class(k):
    a, b = _operands(k)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bf16 = round_mantissa(a, 7).astype(np.float64) @ round_mantissa(b, 7).astype(np.float64)
    assert classify(_rel_rms(bf16, ref), "fp32") == "bf16-class"
    assert classify(_rel_rms(bf16, ref), "fp16") == "bf16-class"  # an fp16 row that computed like bf16


def test_fp16_output_rounding_is_fp16_class():
    a, b = (to_storage(x, "fp16") for x in _operands(1024))
    ref = a.astype(np.float64) @ b.astype(np.float64)
    y = ref.astype(np.float16).astype(np.float64)
    assert classify(_rel_rms(y, ref), "fp16") == "fp16-class"


def test_round_mantissa_matches_bf16_round_to_nearest_even():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(1).standard_normal(10_000).astype(np.float32)
    expected = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(round_mantissa(x, 7), expected)


def test_round_mantissa_keeps_specials():
    x = np.array([np.inf, -np.inf, np.nan, 0.0], dtype=np.float32)
    y = round_mantissa(x, 7)
    assert np.isinf(y[0]) and np.isinf(y[1]) and np.isnan(y[2]) and y[3] == 0


def test_compare_flags_non_finite_and_shape_mismatch():
    ref = np.ones((4, 4))
    bad = ref.copy()
    bad[0, 0] = np.nan
    report = compare(bad, ref, "fp32", 1e-4)
    assert report.effective_precision == "non-finite" and not report.correct
    with pytest.raises(ValueError):
        compare(np.ones((3, 4)), ref, "fp32", 1e-4)


def test_correct_needs_both_tolerance_and_matching_precision():
    a, b = _operands(512)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tf32 = round_mantissa(a, 10).astype(np.float64) @ round_mantissa(b, 10).astype(np.float64)
    loose = compare(tf32, ref, "fp32", tolerance=1.0)  # within a loose tolerance...
    assert loose.within_tolerance and not loose.precision_matches and not loose.correct  # ...still not fp32


def test_round_mantissa_is_bit_identical_to_its_uint64_definition():
    """round_mantissa works in uint32 in place (a 0.5B model's weights pass through it); its
    bits equal the plain uint64 round-to-nearest-even over every kind of float32 pattern:
    normals, subnormals, signed zeros, infinities and NaN payloads."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    for bits in (7, 10):
        u = x.view(np.uint32).astype(np.uint64)
        drop = 23 - bits
        plain = ((((u + ((1 << (drop - 1)) - 1) + ((u >> drop) & 1)) >> drop << drop) & 0xFFFFFFFF).astype(np.uint32)).view(np.float32)
        plain = np.where(np.isfinite(x), plain, x)
        assert np.array_equal(round_mantissa(x, bits).view(np.uint32), plain.view(np.uint32))
