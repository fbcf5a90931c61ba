"""On a real asynchronous device, the barrier self-check catches a barrier that returns before
the work is done (the bug behind published MPS/CUDA tables that were 31-45x too fast), and the
row of a tiny op timed through it, which the datasheet-peak bound alone would call plausible,
becomes an error that names the check.

Needs torch with CUDA, and is skipped elsewhere: torch's CPU calls block, so on a CPU a skipped
barrier still waits and the check rightly calls it valid (tests/test_selfcheck.py covers the
asynchronous case on a CPU with a fake queue). What it printed on the lent H200 is quoted in
docs/verified-where.md. Run it on a GPU with `pytest tests/test_selfcheck_gpu.py -v`.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (an asynchronous device)")

from bench import selfcheck  # noqa: E402
from bench.frameworks.torch.adapter import TorchAdapter  # noqa: E402
from bench.plan import CaseMessage  # noqa: E402
from bench.worker import run_case  # noqa: E402

TINY = CaseMessage.from_json({"workload": "matmul", "params": {"m": 64, "n": 64, "k": 64}, "dtype": "fp32"})


class SkippedSyncAdapter(TorchAdapter):
    """torch with a barrier that returns at once: `torch.cuda.synchronize` replaced by nothing."""

    def barrier(self, out):
        return None


def test_torch_cuda_barrier_is_valid_and_the_tiny_case_is_ok():
    adapter = TorchAdapter(device="cuda")
    assert selfcheck.check_barrier(adapter).valid is True
    row = run_case(adapter, TINY)
    assert row["status"] == "ok", row.get("reason")
    assert row["barrier_check"].startswith("valid")


def test_a_barrier_that_skips_synchronize_is_caught_and_its_rows_are_errors():
    adapter = SkippedSyncAdapter(device="cuda")
    check = selfcheck.check_barrier(adapter)
    assert check.valid is False and check.summary.startswith("INVALID"), check.summary
    row = run_case(adapter, TINY)
    assert row["status"] == "error"
    assert row["reason"].startswith("barrier check failed: INVALID")
