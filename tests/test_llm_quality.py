"""Quantized rows' quality figures (bench.frameworks.llm_quality), the worker's one
model build per case, JAX's eager skip and MLX's compiled-or-unsupported decision."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.frameworks import llm_quality
from bench.frameworks.base import Skipped, Unsupported
from bench.plan import CaseMessage
from workloads import llama
from workloads.generate import tiny


def test_identical_logits_agree_fully_with_zero_divergence():
    z = np.random.default_rng(0).normal(size=(5, 11))
    q = llm_quality.compare(z, z)
    assert q["quality_top1_agreement"] == 1.0 and q["quality_kl_mean"] == pytest.approx(0, abs=1e-12) and q["quality_positions"] == 5


def test_kl_matches_the_closed_form_and_agreement_counts_flipped_argmaxes():
    # two outcomes: p = softmax([0, 0]) = (1/2, 1/2), q = softmax([0, log 3]) = (1/4, 3/4)
    dense = np.array([[0.0, 0.0], [1.0, 0.0]])
    quant = np.array([[0.0, np.log(3.0)], [1.0, 0.0]])
    q = llm_quality.compare(dense, quant)
    kl = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert q["quality_kl_mean"] == pytest.approx(kl / 2) and q["quality_kl_max"] == pytest.approx(kl)
    assert q["quality_top1_agreement"] == 0.5  # position 0: argmax 0 vs 1; position 1: both 0
    with pytest.raises(ValueError, match="one shape"):
        llm_quality.compare(dense, quant[:1])


def test_a_quantized_case_carries_the_same_weights_unquantized():
    p = tiny(bits=4)
    x = llama.init(p, np.random.default_rng(3), keep_dense=True)
    dense = llama.init({**p, "bits": 16}, np.random.default_rng(3))
    flat = llama.dense_of(x)
    for name in llama.linear_shapes(p):
        if name in dense:
            assert np.array_equal(flat[name], dense[name]), name
            assert name + ".q" in x and name + ".q" not in flat
    assert np.array_equal(flat["embed"], dense["embed"])


def test_the_worker_builds_a_case_once_for_both_modes():
    from bench import worker

    eager = CaseMessage("generate", tiny(), "fp32", mode="eager")
    first = worker._inputs_and_reference(eager)
    again = worker._inputs_and_reference(CaseMessage("generate", tiny(), "fp32", mode="compiled"))
    assert again[0] is first[0] and again[1] is first[1]
    other = worker._inputs_and_reference(CaseMessage("generate", tiny(), "bf16", mode="eager"))
    assert other[0] is not first[0]


def test_eager_jax_at_a_large_shape_is_skipped_with_the_measured_cost(monkeypatch):
    jax_generate = pytest.importorskip("bench.frameworks.jax.generate")
    from bench.frameworks.jax.adapter import JaxAdapter

    adapter = JaxAdapter(device="cpu")
    adapter.set_math_mode("fp32")
    adapter.mode = "eager"
    jax_generate.skip_eager_if_too_long(adapter, tiny(), "fp32")  # the probe's own size: runs, nothing measured
    monkeypatch.setattr(jax_generate, "EAGER_CASE_BUDGET_S", 0.0)
    with pytest.raises(Skipped, match=r"measured in this process on a 2-layer shape.*ms per token.*at 24 layers"):
        adapter.check_case_budget("generate", {**tiny(), "layers": 24}, "fp32")


def test_mlx_compiled_decode_is_unsupported_unless_it_is_faster():
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import generate as mlx_generate

    class Adapter:
        backend = "cpu"

    def stepper(delay: float):
        def decode(tokens, pos):
            time.sleep(delay)
            return mx.array(1.0)

        return decode

    p, prefill = tiny(), lambda tokens: mx.array(0.0)
    mlx_generate._require_compile_helps(Adapter(), p, prefill, stepper(2e-3), stepper(0.0))  # faster compiled: kept
    with pytest.raises(Unsupported, match=r"ms compiled vs .* ms eager per step"):
        mlx_generate._require_compile_helps(Adapter(), p, prefill, stepper(0.0), stepper(2e-3))


@pytest.mark.parametrize("bits", [16, 4])
def test_torch_compiled_step_marks_every_weight_tensor_static(bits):
    """CUDA-graph trees copy every non-static graph input before each replay: on the H200 the
    closure's weights were copied per token (peak 1.90 vs 0.99 GiB eager). Every tensor of the
    tree, inside quantized linears too, must be found and marked."""
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch import generate as torch_generate
    from bench.frameworks.torch.adapter import TorchAdapter

    adapter = TorchAdapter(device="cpu")
    p = tiny(bits=bits)
    x = llama.init(p, np.random.default_rng(0))

    def build(name, flat):
        if name in flat:
            return adapter.asarray(flat[name], "bf16")
        return torch_generate._int4_linear(adapter, flat[name + ".q"], flat[name + ".scale"], flat[name + ".bias"], p["group"], "bf16")

    tree = llama.nest(x, p, build, lambda a: adapter.asarray(a, "bf16"))
    found = torch_generate._tensors(tree)
    per_linear = 1 if bits == 16 else 2  # dense weight, or packed codes + scales/zeros
    expected = 2 + p["layers"] * (2 + 7 * per_linear) + per_linear  # embed, final norm, blocks, untied head
    assert len(found) == expected and all(isinstance(t, torch.Tensor) for t in found)
    assert len({id(t) for t in found}) == expected
