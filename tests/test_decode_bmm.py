"""decode_attention and bmm: the definitions, then every adapter on this CPU through the
real runner and worker processes, checked against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from bench.runner import plan
from workloads import WORKLOADS

FRAMEWORKS = ("torch", "tensorflow", "jax", "mlx")
DECODE = {"batch": 2, "heads": 6, "kv_heads": 2, "q_len": 1, "kv_len": 96, "head_dim": 16}
BMM = {"batch": 5, "m": 3, "n": 7, "k": 11}


def test_decode_reference_maps_query_head_h_to_kv_head_h_over_group():
    w = WORKLOADS["decode_attention"]
    x = w.make_inputs(DECODE, np.random.default_rng(0))
    out = w.reference(x, DECODE)
    assert out.shape == (1, 6, 1, 16)
    for h in range(6):
        kv = h // 3  # 6 query heads over 2 KV heads: groups of 3 consecutive heads
        s = x["q"][0, h] @ x["k"][0, kv].T / 4.0
        p = np.exp(s - s.max())
        assert np.allclose(out[0, h], (p / p.sum()) @ x["v"][0, kv])


def test_decode_bytes_are_the_kv_read_and_heads_must_divide():
    w = WORKLOADS["decode_attention"]
    assert w.bytes_moved(DECODE, 2) == 2 * 2 * 2 * 96 * 16 * 2  # K and V, batch 2, 2 heads, bf16
    assert w.flops(DECODE) == 4 * 2 * 6 * 1 * 96 * 16
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        w.make_inputs({**DECODE, "kv_heads": 4}, np.random.default_rng(0))


def test_decode_suites_span_512_to_32k_cached_tokens_with_grouped_heads():
    lengths = {c["kv_len"] for c in WORKLOADS["decode_attention"].cases("full")}
    assert {512, 4096, 32768} <= lengths
    assert all(c["heads"] > c["kv_heads"] and c["q_len"] == 1 for c in WORKLOADS["decode_attention"].cases("full"))


def test_bmm_reference_is_one_product_per_batch_entry():
    w = WORKLOADS["bmm"]
    x = w.make_inputs(BMM, np.random.default_rng(1))
    out = w.reference(x, BMM)
    assert out.shape == (4, 3, 7)
    for i in range(4):
        assert np.allclose(out[i], x["a"][i] @ x["b"][i])
    assert w.flops(BMM) == 2 * 5 * 3 * 7 * 11


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_decode_attention_and_bmm_match_float64_on_cpu(framework, run_cases):
    cases = plan([framework], ["decode_attention"], ["fp32", "bf16"], "quick", [DECODE])
    cases += plan([framework], ["bmm"], ["fp32", "bf16"], "quick", [BMM])
    rows, _ = run_cases(cases, device="cpu")
    assert len(rows) == 4
    for r in rows:
        assert r["status"] == "ok", r["reason"]
        assert r["correct"], (r["workload"], r["dtype"], r["max_rel_error"], r["effective_precision"])
        assert r["gbps"] > 0 and r["implementation"]
