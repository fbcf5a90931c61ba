"""Run-time self-checks (bench.selfcheck): a barrier that returns early is caught on any
device, for any op size; outputs off the selected device turn the row into an error."""

from __future__ import annotations

import numpy as np
import pytest

from bench import measure, selfcheck
from bench.catalog import FrameworkSpec
from bench.frameworks.base import Placement
from bench.roofline import plausibility
from bench.runner import Case
from tests.fake_framework import AsyncAdapter, FakeAdapter, ForgetfulAdapter

TINY = {"m": 8, "n": 8, "k": 8}
SPECS = {
    "async": FrameworkSpec("async", "tests.fake_framework:AsyncAdapter", "numpy", "fake"),
    "forgetful": FrameworkSpec("forgetful", "tests.fake_framework:ForgetfulAdapter", "numpy", "fake"),
}


def test_a_synchronous_cpu_framework_has_a_valid_barrier():
    check = selfcheck.check_barrier(FakeAdapter(device="cpu"))
    assert check.valid is True and check.summary.startswith("valid: ")


def test_an_asynchronous_device_with_a_real_barrier_passes():
    check = selfcheck.check_barrier(AsyncAdapter(device="cpu"))
    assert check.valid is True, check.summary


def test_a_barrier_that_returns_early_is_caught():
    check = selfcheck.check_barrier(ForgetfulAdapter(device="cpu"))
    assert check.valid is False
    assert check.summary.startswith("INVALID: ForgetfulAdapter.barrier returns before the work is done on cpu")


def test_the_check_runs_once_per_worker_and_backend():
    adapter = AsyncAdapter(device="cpu")
    first = selfcheck.barrier_once(adapter)
    assert selfcheck.barrier_once(adapter) is first


def test_an_adapter_without_a_matmul_hook_is_recorded_as_not_checked():
    class NoHook(FakeAdapter):
        def matmul(self, a, b):
            raise NotImplementedError("no matmul hook")

    check = selfcheck.check_barrier(NoHook(device="cpu"))
    assert check.valid is None and check.summary == "not checked: no matmul hook"


def test_an_early_barrier_makes_every_row_an_error_even_for_an_op_too_small_for_the_peak_bound(run_cases):
    # What the broken barrier would have timed for an 8x8x8 matmul: far below any peak, so
    # the plausibility bound alone would have published it.
    adapter = ForgetfulAdapter(device="cpu")
    a = np.ones((8, 8))
    per_call = measure.warm_up(lambda: adapter.pool.submit(np.matmul, a, a), adapter.barrier, measure.Protocol())
    would_be = plausibility({"status": "ok", "backend": "cpu", "cpu_count": 2, "dtype": "fp32",
                             "tflops": 2 * 8**3 / per_call / 1e12, "gbps": 3 * 64 * 4 / per_call / 1e9})
    assert would_be["plausible"] is True

    rows, _ = run_cases([Case("forgetful", "matmul", TINY, "fp32"), Case("forgetful", "stream", {"n": 1024}, "fp32"),
                         Case("async", "matmul", TINY, "fp32")], frameworks=SPECS)
    forgot_matmul, forgot_stream, waited = rows
    for row in (forgot_matmul, forgot_stream):
        assert row["status"] == "error"
        assert row["reason"].startswith("barrier check failed: INVALID: ForgetfulAdapter.barrier returns before")
        assert row.get("median_s") is None and row["barrier_check"].startswith("INVALID")
    assert waited["status"] == "ok" and waited["barrier_check"].startswith("valid: ")
    assert waited["placement_check"] == "not checked: the fake-async adapter has no placement hook"


def test_placement_summary_words():
    assert Placement(True, "outputs on cpu").summary == "ok: outputs on cpu"
    assert Placement(False, "outputs on cpu, selected mps").summary == "failed: outputs on cpu, selected mps"
    assert Placement(True, "x", {"Einsum": 2}).summary == "partial: x; on the host CPU: Einsum×2"


def test_a_placement_hook_that_raises_is_reported_not_fatal():
    class Broken(FakeAdapter):
        def placement(self, out):
            raise RuntimeError("boom")

    assert selfcheck.check_placement(Broken(device="cpu"), None).summary == "not checked: placement hook failed: RuntimeError: boom"


# -- per framework -------------------------------------------------------------------------
def test_torch_placement_compares_the_output_device():
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch.adapter import TorchAdapter

    adapter = TorchAdapter(device="cpu")
    assert adapter.placement((torch.ones(2), torch.ones(1))).summary == "ok: outputs on cpu, selected cpu"
    off = adapter.placement(torch.ones(2, device="meta"))
    assert off.ok is False and "meta" in off.where


def test_torch_barrier_check_on_cpu():
    pytest.importorskip("torch")
    from bench.frameworks.torch.adapter import TorchAdapter

    assert selfcheck.check_barrier(TorchAdapter(device="cpu")).valid is True


def test_jax_placement_and_barrier_on_cpu():
    pytest.importorskip("jax")
    from bench.frameworks.jax.adapter import JaxAdapter

    adapter = JaxAdapter(device="cpu")
    out = adapter.matmul(adapter.asarray(np.eye(2), "fp32"), adapter.asarray(np.eye(2), "fp32"))
    assert adapter.placement(out).ok is True
    assert selfcheck.check_barrier(adapter).valid is True


def test_mlx_placement_is_the_default_device(monkeypatch):
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx.adapter import MLXAdapter

    adapter = MLXAdapter(device="cpu")
    assert adapter.placement(mx.ones(2)).ok is True
    monkeypatch.setattr(mx, "default_device", lambda: mx.gpu)  # a workload switched devices behind the adapter's back
    assert adapter.placement(mx.ones(2)).ok is False


def test_torch_cuda_barrier_that_skips_synchronize_is_caught():
    """Runs where CUDA is (the lent GPU); the CPU equivalent is the fake queue above."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from bench.frameworks.torch.adapter import TorchAdapter

    class SkippedSync(TorchAdapter):
        def barrier(self, out):
            return None

    assert selfcheck.check_barrier(TorchAdapter(device="cuda")).valid is True
    assert selfcheck.check_barrier(SkippedSync(device="cuda")).valid is False


def test_rows_that_end_before_timing_still_carry_the_barrier_verdict(run_cases):
    rows, _ = run_cases([Case("async", "matmul", TINY, "fp32"), Case("async", "matmul", TINY, "tf32")], frameworks=SPECS)
    assert rows[1]["status"] == "unsupported"
    assert rows[1]["barrier_check"] == rows[0]["barrier_check"] and rows[1]["barrier_check"].startswith("valid: ")
