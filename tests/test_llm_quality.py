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
    with pytest.raises(Skipped, match=r"measured in this process on a dense 2-layer shape.*ms per token.*at 24 layers"):
        adapter.check_case_budget("generate", {**tiny(), "layers": 24}, "fp32")


def test_mlx_compiled_decode_is_unsupported_unless_it_is_faster():
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import generate as mlx_generate

    class Adapter:
        backend = "cpu"

        @staticmethod
        def barrier(out):
            mx.eval(out)

    def stepper(delay: float):
        def decode(tokens, pos):
            time.sleep(delay)
            return mx.array(1.0)

        return decode

    p, prefill = tiny(), lambda tokens: mx.array(0.0)
    mlx_generate._require_compile_helps(Adapter(), p, prefill, stepper(2e-3), stepper(0.0))  # faster compiled: kept
    with pytest.raises(Unsupported, match=r"ms \[.*\] compiled vs .* ms \[.*\] eager per step \(medians of \d+ and \d+ latency samples"):
        mlx_generate._require_compile_helps(Adapter(), p, prefill, stepper(0.0), stepper(2e-3))


def test_mlx_compile_check_times_through_the_suites_protocol(monkeypatch):
    """The compiled-vs-eager check is bench.measure's warm-up and latency sampling, not a
    loop of its own: both paths are timed by time_latency under COMPARE_PROTOCOL."""
    mx = pytest.importorskip("mlx.core")
    from bench import measure
    from bench.frameworks.mlx import generate as mlx_generate

    seen = []
    real = measure.time_latency

    def spy(call, barrier, per_call, protocol, *args, **kwargs):
        seen.append(protocol)
        return real(call, barrier, per_call, protocol, *args, **kwargs)

    monkeypatch.setattr(measure, "time_latency", spy)

    class Adapter:
        backend = "cpu"

        @staticmethod
        def barrier(out):
            mx.eval(out)

    def eager(tokens, pos):
        return mx.array(1.0)

    def compiled(tokens, pos):
        time.sleep(2e-3)
        return mx.array(1.0)

    with pytest.raises(Unsupported):  # a slower compiled step: refused
        mlx_generate._require_compile_helps(Adapter(), tiny(), lambda tokens: mx.array(0.0), eager, compiled)
    assert seen == [mlx_generate.COMPARE_PROTOCOL] * 2


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


def test_llm_table_prints_the_committed_h200_generate_rows():
    """scripts/llm_table.py on the committed H200 baseline: the Qwen2.5-0.5B-shape case with
    both modes of each framework, intervals, and the skip/unsupported reasons."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    baseline = next((root / "results" / "baselines").glob("nvidia-h200-*.parquet"))
    spec = importlib.util.spec_from_file_location("llm_table", root / "scripts" / "llm_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    text = "\n".join(table.rows([str(baseline)]))
    qwen = text[text.index("case: layers 24 d 896 vocab 151936 prompt 512 new 128 batch 1 dense") :].split("\ncase:")[0]
    for who in ("torch eager", "torch compiled", "jax compiled", "mlx eager"):
        assert who in qwen and "[" in qwen.split(who, 1)[1].splitlines()[0], who  # a figure with its 95% interval
    assert "op-by-op JAX would need" in qwen and "mx.compile does not speed this decode step up" in qwen


# -- what a case costs: each piece built once, each head only where it is read --------------
def test_the_head_runs_only_at_the_scored_positions():
    p = tiny(prompt=6, new_tokens=4)
    x = {k: v.astype(np.float64) for k, v in llama.init(p, np.random.default_rng(1)).items()}
    tree, ops, tokens = llama.nest(x, p), llama.NumpyOps(p), np.random.default_rng(2).integers(0, p["vocab"], (1, 9))
    every, _ = llama.forward(ops, tree, tokens, None, 0, p, scored_from=0)
    tail, _ = llama.forward(ops, tree, tokens, None, 0, p, scored_from=5)
    last, _ = llama.forward(ops, tree, tokens, None, 0, p)
    assert every.shape == (1, 9, p["vocab"]) and tail.shape == (1, 4, p["vocab"])
    assert np.allclose(tail, every[:, 5:], rtol=0, atol=1e-12) and np.allclose(last, every[:, -1], rtol=0, atol=1e-12)

    class Counting(llama.NumpyOps):
        rows = 0

        def linear(self, x, w):
            if w is tree["head"]:
                Counting.rows += x.shape[1]
            return super().linear(x, w)

    llama.forward(Counting(p), tree, tokens, None, 0, p, scored_from=5)
    assert Counting.rows == 4


def test_the_float64_model_is_built_once_for_the_reference_and_the_greedy_checks(monkeypatch):
    from bench import worker
    from workloads import generate

    built = []
    real = llama.nest
    monkeypatch.setattr(llama, "nest", lambda flat, p, *a: (built.append(p["bits"]), real(flat, p, *a))[1])
    generate._TREE.clear()
    worker._LAST_CASE.clear()
    inputs, _, extras = worker._inputs_and_reference(CaseMessage("generate", tiny(bits=4), "bf16"))
    free = [int(t) for t in extras["greedy_tokens"]]  # the reference extras: free-running, from the float64 copies
    forced = generate._float64_greedy(inputs, tiny(bits=4), tuple(free))  # assess's teacher-forced run, from the stored arrays
    assert forced == free and len(free) == generate.CHECK_STEPS and built == [4]  # one float64 tree, for the reference and both decodings
    worker._LAST_CASE.clear()


def test_greedy_from_a_shared_prefill_equals_greedy_from_its_own():
    p = tiny(prompt=6, new_tokens=8)
    x = {k: v.astype(np.float64) for k, v in llama.init(p, np.random.default_rng(4)).items()}
    tree, prompt = llama.nest(x, p), np.random.default_rng(5).integers(0, p["vocab"], 6)
    start = llama.prefill(tree, prompt, 6 + 8 + 1, p)
    own = llama.greedy(tree, prompt, 8, p)
    assert llama.greedy(tree, prompt, 8, p, start=start) == own
    other = [(t + 1) % p["vocab"] for t in own]
    assert llama.greedy(tree, prompt, 8, p, forced=other, start=start) == llama.greedy(tree, prompt, 8, p, forced=other)


def test_jax_compiles_one_step_function_for_the_timed_step_and_greedy_generation(caplog):
    pytest.importorskip("jax")
    from bench import measure
    from tests.helpers import compiled_jax_generate, jax_compiles_logged

    p = tiny(prompt=8, new_tokens=4)
    adapter, x = compiled_jax_generate(p)
    with jax_compiles_logged(caplog):
        prepared = adapter.prepare("generate", p, "fp32", x)
        out, _ = measure.time_first_call(prepared.call, adapter.barrier)
        prepared.checked(out)
        prepared.metrics()  # greedy generation, prefill, TTFT
        compiled = {name for name in ("prefill_fn", "step_fn", "decode_fn", "greedy_fn") if any(name in r.getMessage() for r in caplog.records)}
    assert compiled == {"prefill_fn", "step_fn"}


def test_the_eager_jax_probe_runs_once_per_process(monkeypatch):
    jax_generate = pytest.importorskip("bench.frameworks.jax.generate")
    from bench.frameworks.jax.adapter import JaxAdapter

    calls = []
    monkeypatch.setattr(jax_generate, "_probe", lambda adapter, small, dtype: (calls.append(small["bits"]), (1.0, 1e-3))[1])
    monkeypatch.setattr(jax_generate, "_PROBES", {})
    monkeypatch.setattr(jax_generate, "EAGER_CASE_BUDGET_S", 0.0)
    adapter = JaxAdapter(device="cpu")
    adapter.mode = "eager"
    big = {**tiny(), "layers": 24, "d_model": 256}
    for bits in (16, 8, 4):
        with pytest.raises(Skipped, match="lower bound"):
            adapter.check_case_budget("generate", {**big, "bits": bits}, "bf16")
    assert calls == [16]  # dense, once: a lower bound for the quantized cases too


def test_perplexity_of_uniform_logits_is_the_vocabulary_size():
    assert llm_quality.perplexity(np.zeros((7, 50)), np.arange(7)) == pytest.approx(50.0)
    logits = np.full((3, 4), -30.0)
    logits[[0, 1], [2, 3]] = 30.0  # certain of the next token
    assert llm_quality.perplexity(logits, np.array([0, 2, 3])) == pytest.approx(1.0)


@pytest.mark.parametrize("bits", [16, 4])
def test_jax_checks_scan_the_blocks_and_agree_with_the_unrolled_forward(caplog, bits):
    """The uncached forward of JAX's checks (cache vs recompute, the scorers) runs its blocks
    under lax.scan: the same logits as the unrolled forward, and the timed prefill is
    compiled once (for the context), not again at prompt+1 for the check."""
    jax_generate = pytest.importorskip("bench.frameworks.jax.generate")
    from bench import measure
    from bench.frameworks.generation import uncached_forward
    from tests.helpers import compiled_jax_generate, jax_compiles_logged

    p = tiny(prompt=8, new_tokens=4, bits=bits)
    adapter, x = compiled_jax_generate(p)
    with jax_compiles_logged(caplog):
        prepared = adapter.prepare("generate", p, "fp32", x)
        out, _ = measure.time_first_call(prepared.call, adapter.barrier)
        prepared.checked(out)
        metrics = prepared.metrics()
        prefill_compiles = sum("prefill_fn" in r.getMessage() and "Compiling" in r.getMessage() for r in caplog.records)
    assert prefill_compiles == 1 and metrics["cache_vs_recompute_max_rel"] < 1e-5
    if bits != 16:
        assert metrics["quality_positions"] == p["new_tokens"] + 1 and metrics["quality_kl_mean"] >= 0.0  # the scanned scorers ran

    model = jax_generate._Model(adapter, p, "fp32", x, compiled=True)
    tokens = model.put(x["prompt"])
    for scored_from in (None, 3):
        scanned = np.asarray(jax_generate.scanned_forward(model.ops, model.tree, tokens, p, scored_from))
        unrolled = np.asarray(uncached_forward(model.ops, model.tree, tokens, p, scored_from))
        np.testing.assert_allclose(scanned, unrolled, rtol=1e-5, atol=1e-5)


def test_mlx_compiled_rope_passes_an_offset_mlx_reads_for_every_sequence(monkeypatch):
    """mx.fast.rope reads an array offset as a scalar or one per sequence (B,); a (1,) offset
    at batch > 1 sent sequences 1.. past its end on MLX CUDA (cache-vs-recompute gap 0.43 on
    the H200). The MLX CPU back end computes it right either way, so the documented
    contract is what this checks, with the rotation against the eager ops' int offset."""
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import generate as mlx_generate

    p = tiny(batch=3)
    seen, real = [], mx.fast.rope

    def recording(a, dims, **kw):
        offset = kw["offset"]
        seen.append(offset if isinstance(offset, int) else tuple(offset.shape))
        return real(a, dims, **kw)

    monkeypatch.setattr(mx.fast, "rope", recording)
    x = mx.random.normal((3, p["heads"], 1, llama.head_dim(p)))
    static = mlx_generate.MLXStaticLlamaOps(p).rope(x, mx.array([7], mx.int32))
    eager = mlx_generate.MLXLlamaOps(p).rope(x, 7)
    assert seen == [(), 7]  # 0-d: one position for the batch (not (1,): sequence 0's only)
    np.testing.assert_allclose(np.array(static), np.array(eager), rtol=1e-5, atol=1e-6)
