"""Every adapter's matmul and sdpa on this machine's CPU, through real worker processes,
checked against the float64 reference."""

from __future__ import annotations

import pytest

from bench.plan import plan
from tests.helpers import each_framework

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("framework", each_framework())
def test_matmul_and_sdpa_match_the_reference_on_cpu(framework, run_cases):
    rows, _ = run_cases(plan([framework], ["matmul", "sdpa"], ["fp32", "bf16", "tf32"], "quick"), device="cpu")
    by_dtype: dict[str, list[dict]] = {}
    for r in rows:
        by_dtype.setdefault(r["dtype"], []).append(r)
    for r in by_dtype["fp32"] + by_dtype["bf16"]:
        assert r["status"] == "ok", r["reason"]
        assert r["backend"] == "cpu"
        assert r["correct"], (r["workload"], r["dtype"], r["max_rel_error"], r["effective_precision"])
        assert r["queued_median_s"] > 0 and r["latency_median_s"] > 0 and r["first_call_s"] > 0
        assert r["peak_rss_bytes"] > 0
        assert r["implementation"]
    assert all(r["effective_precision"] == "fp32-class" for r in by_dtype["fp32"])
    for r in by_dtype["tf32"]:  # no CPU has a TF32-class mode
        assert r["status"] == "unsupported" and "CPU" in r["reason"]
    assert all(r["math_mode"] for r in by_dtype["fp32"])
