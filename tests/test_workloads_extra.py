"""qmatmul, train_step and lora: the shared definitions, then every adapter on this
machine's CPU through the real runner and worker processes, then the frameworks'
training curves against each other (which no single row can check: each framework runs
in its own worker)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench.plan import Case, plan
from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig
from tests.helpers import QUICK_CPU_MODE, QUICK_PROTOCOL, each_framework, installed, installed_frameworks, metrics, one_row, params_key, rows_where, unpack_nibbles
from workloads import WORKLOADS, decoder, quant, training

NEW = ("qmatmul", "train_step", "lora")
INT8_AFFINE = {"m": 4, "n": 128, "k": 128, "bits": 8, "scheme": "affine", "group": 64}


# -- the shared definitions -------------------------------------------------------------
@pytest.mark.parametrize("bits", [4, 8])
def test_affine_quantizer_round_trip_is_within_half_a_step(bits):
    w = np.random.default_rng(0).standard_normal((16, 256))
    q, scale, bias = quant.quantize(w, bits, "affine", 64)
    assert q.min() >= 0 and q.max() <= 2**bits - 1 and np.all(q == np.rint(q))
    err = np.abs(quant.dequantize(q, scale, bias) - w).reshape(16, 4, 64)
    assert np.all(err <= scale[..., None] / 2 + 1e-12)


def test_symmetric_quantizer_is_signed_codes_with_an_exact_offset():
    w = np.random.default_rng(1).standard_normal((8, 128))
    q, scale, bias = quant.quantize(w, 8, "symmetric", 128)
    assert scale.shape == (8, 1) and np.array_equal(bias, -128 * scale)
    assert np.allclose(quant.dequantize(q, scale, bias), (q - 128) * scale)
    assert np.max(np.abs(quant.dequantize(q, scale, bias) - w)) <= scale.max() / 2 + 1e-12


def test_packings_round_trip():
    q = np.random.default_rng(2).integers(0, 16, size=(4, 64))
    assert np.array_equal(unpack_nibbles(quant.pack_nibbles(q)), q)
    assert quant.pack_nibbles(q)[0, 0] == (q[0, 0] << 4) | q[0, 1]  # even k in the high nibble


@pytest.mark.parametrize("bits", [4, 8])
def test_mlx_packing_matches_mx_dequantize(bits):
    mx = pytest.importorskip("mlx.core")
    w = np.random.default_rng(3).standard_normal((8, 128))
    q, scale, bias = quant.quantize(w, bits, "affine", 64)
    packed = mx.array(quant.pack_uint32(q, bits))
    got = mx.dequantize(packed, mx.array(scale.astype(np.float32)), mx.array(bias.astype(np.float32)), group_size=64, bits=bits)
    assert np.allclose(np.array(got), quant.dequantize(q, scale, bias), atol=1e-5)


def test_reference_loss_depends_on_every_layer():
    """The init is large enough that the first-step loss witnesses the layers (not ln V)."""
    p = WORKLOADS["train_step"].cases("quick")[0]
    x = WORKLOADS["train_step"].make_inputs(p, np.random.default_rng(0))
    loss = float(training.reference(x, p))
    x2 = dict(x, **{"blocks.1.wv": np.zeros_like(x["blocks.1.wv"])})
    assert abs(float(training.reference(x2, p)) - loss) / loss > 2 * WORKLOADS["train_step"].tolerance["bf16"]
    assert abs(loss - np.log(256)) > 0.1


def test_definitions_hash_their_shared_model():
    assert decoder in WORKLOADS["lora"].depends_on and quant in WORKLOADS["qmatmul"].depends_on


# -- every adapter, through the runner ---------------------------------------------------
@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[dict]:
    """Every installed framework × the three workloads (quick sizes), plus one case torch cannot run."""
    out = tmp_path_factory.mktemp("extra") / "run.parquet"
    cases = [dataclasses.replace(c, mode=QUICK_CPU_MODE[c.framework]) if c.workload != "qmatmul" else c
             for c in plan(installed_frameworks(), list(NEW), ["fp16", "bf16"], "quick")]
    cases += [Case("torch", "qmatmul", INT8_AFFINE, "bf16")] if installed("torch") else []
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(out), "extra")
    return runner.run(cases)


def _rows(rows: list[dict], framework: str, workload: str) -> list[dict]:
    return [r for r in rows_where(rows, framework=framework, workload=workload) if r["params"] != params_key(INT8_AFFINE)]


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_qmatmul_matches_the_dequantized_reference(rows, framework):
    found = _rows(rows, framework, "qmatmul")
    assert len(found) == 4  # int8 symmetric + int4 affine, fp16 + bf16
    for r in found:
        assert r["status"] == "ok", r["reason"]
        m = metrics(r)
        assert m["quant_error"] > 0 and m["weight_gbps"] > 0 and m["scheme"]
        assert r["implementation"]
        if framework == "mlx" and r["backend"] == "cpu":
            # mlx-cpu's quantized_matmul accumulates in fp16/bf16, so it measures coarser
            # than its dtype: the row must say so rather than pass.
            assert not r["correct"] and "measured" in r["reason"], (r["dtype"], r["effective_precision"], r["reason"])
        else:
            assert r["correct"], (r["dtype"], r["max_rel_error"], r["effective_precision"])
    if framework in ("jax", "tensorflow"):
        assert all(r["implementation"].startswith("dequant-fused") for r in found)


@pytest.mark.integration
@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_torch_int8_affine_groups_are_unsupported_with_a_reason(rows):
    r = one_row(rows, INT8_AFFINE, framework="torch")
    assert r["status"] == "unsupported" and "_weight_int8pack_mm" in r["reason"]


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
@pytest.mark.parametrize("workload", ["train_step", "lora"])
def test_training_first_loss_matches_float64_and_then_falls(rows, framework, workload):
    (r,) = _rows(rows, framework, workload)
    assert r["status"] == "ok", r["reason"]
    assert r["correct"], r["reason"]
    assert r["effective_precision"] == "not-classified" and r["precision_matches"] is None
    p = json.loads(r["params"])
    m = metrics(r)
    assert len(m["loss_curve"]) == p["steps"]
    assert m["loss_curve"][-1] < m["loss_curve"][0] * (1 - training.MIN_FALL)
    assert abs(m["loss_curve"][0] - m["reference_loss"]) <= r["tolerance"] * m["reference_loss"]
    assert m["tokens_per_s"] > 0 and m["samples_per_s"] > 0 and r["first_call_s"] > 0


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_lora_trains_the_adapters_and_only_them(rows, framework):
    (r,) = _rows(rows, framework, "lora")
    m = metrics(r)
    assert m["trainable_params"] == training.param_count(json.loads(r["params"]), lora=True)
    assert m["frozen_max_abs_change"] == 0.0


@pytest.mark.integration
@pytest.mark.parametrize("workload", ["train_step", "lora"])
def test_frameworks_agree_on_the_loss_curve(rows, workload):
    if len(installed_frameworks()) < 2:
        pytest.skip("fewer than two frameworks installed: nothing to agree with")
    curves = {fw: metrics(_rows(rows, fw, workload)[0])["loss_curve"] for fw in installed_frameworks()}
    finals = np.array([c[-1] for c in curves.values()])
    spread = (finals.max() - finals.min()) / finals.mean()
    assert spread <= training.AGREEMENT_RTOL, curves


# -- host work side by side (workloads.parallel) -----------------------------------------
def test_seeded_weights_do_not_depend_on_the_thread_count(monkeypatch):
    """A Qwen-shaped case draws its weights in row blocks on every CPU; the arrays must be
    the same whatever the count, or two machines (or two runs) would not time one model."""
    import numpy as np

    from workloads import llama, parallel
    from workloads.generate import tiny

    p = {**tiny(), "vocab": 3000}  # an embedding of several blocks
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 1 << 14)
    drawn = []
    for count in (1, 4):
        monkeypatch.setattr(parallel, "cpus", lambda count=count: count)
        drawn.append(llama.init(p, np.random.default_rng(7)))
    assert drawn[0].keys() == drawn[1].keys()
    for name in drawn[0]:
        np.testing.assert_array_equal(drawn[0][name], drawn[1][name], err_msg=name)
    embed = drawn[0]["embed"]
    assert embed.dtype == np.float32 and abs(float(embed.std()) * np.sqrt(p["d_model"]) - 1) < 0.05  # N(0, 1/D)
    assert len({embed[i : i + 128].tobytes() for i in range(0, 3000 - 128, 128)}) > 1  # blocks are not one stream repeated


def test_thread_map_keeps_order_and_raises_the_first_error(monkeypatch):
    import pytest

    from workloads import parallel

    monkeypatch.setattr(parallel, "cpus", lambda: 3)
    assert parallel.thread_map(lambda x: x * x, range(10)) == [x * x for x in range(10)]

    def boom(x: int) -> int:
        if x == 4:
            raise ValueError("four")
        return x

    with pytest.raises(ValueError, match="four"):
        parallel.thread_map(boom, range(8))
