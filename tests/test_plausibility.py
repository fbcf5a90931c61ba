"""A harness that forgets to wait reports impossible speed; the suite must say so."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from bench.catalog import FrameworkSpec
from bench.plan import Case
from bench.roofline import cpu_peak, plausibility
from bench.summary import rank

# The CPU bound grows with the host's cores (roofline.cpu_peak: 6.4 TFLOP/s a core with the
# margin), so the work must too: a forgetful call costs one thread-pool submit (under 20 µs
# even on a loaded host), and 2·768·768·k FLOP in 20 µs beats the bound while k > 108 per core.
BIG = {"m": 768, "n": 768, "k": max(768, 128 * (os.cpu_count() or 1))}
SPECS = {
    "async": FrameworkSpec("async", "tests.fake_framework:AsyncAdapter", "numpy", "fake"),
    "forgetful": FrameworkSpec("forgetful", "tests.fake_framework:UncheckedForgetfulAdapter", "numpy", "fake"),
}


@pytest.mark.integration
def test_a_missing_barrier_is_reported_implausible_and_never_ranked(run_cases):
    """The second line of defence: where the barrier check cannot run (this fake has no
    matmul hook; bench.selfcheck catches the same barrier otherwise, tests/test_selfcheck.py)."""
    rows, _ = run_cases([Case("async", "matmul", BIG, "fp32"), Case("forgetful", "matmul", BIG, "fp32")], frameworks=SPECS)
    waited, forgot = rows
    assert waited["status"] == forgot["status"] == "ok"
    assert waited["barrier_check"].startswith("valid: ") and forgot["barrier_check"].startswith("not checked: ")
    assert waited["plausible"] is True
    assert forgot["plausible"] is False and "did the barrier wait" in forgot["plausibility_note"]
    ranked = rank(pd.DataFrame(rows).assign(machine="m"))
    assert ranked["rank"].tolist()[0] == 1 and pd.isna(ranked["rank"].tolist()[1])


def test_datasheet_peaks_for_known_gpus_and_a_generous_cpu_bound():
    h100 = plausibility({"status": "ok", "backend": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "dtype": "bf16",
                         "tflops": 750.0, "gbps": 100.0})
    assert h100["plausible"] is True and h100["peak_tflops"] == 989.4
    too_fast = plausibility({"status": "ok", "backend": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "dtype": "fp32",
                             "tflops": 400.0, "gbps": 1.0})
    assert too_fast["plausible"] is False  # 400 TFLOP/s is TF32 speed, impossible for strict fp32
    unknown = plausibility({"status": "ok", "backend": "metal", "device_name": "Apple M9 Hyper", "dtype": "fp32", "tflops": 1.0})
    assert unknown["plausible"] is None
    assert cpu_peak(2).tflops["fp32"] > 5
