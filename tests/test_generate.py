"""generate: the Llama-style model's float64 reference (cache vs recompute), then every
adapter on this machine's CPU through the real runner and worker processes: the tiny
configuration dense (fp32: greedy tokens equal float64's; bf16 at batch 2) and int8/int4
group-wise (bf16: agreement recorded)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench.plan import Case
from bench.catalog import FRAMEWORKS as CATALOG
from bench.frameworks.generation import GENERATE_REPEATS, PREFILL_REPEATS
from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig
from tests.helpers import QUICK_CPU_MODE, QUICK_PROTOCOL, each_framework, installed_frameworks, metrics, one_row, write_safetensors
from workloads import WORKLOADS, checkpoint, llama, quant
from workloads.generate import CHECK_STEPS, tiny, with_model

CASES = [(tiny(), "fp32"), (tiny(batch=2), "bf16"), (tiny(bits=8), "bf16"), (tiny(bits=4), "bf16")]


# -- the shared definition --------------------------------------------------------------
def _model(p):
    """The inputs and their float64 model (as the worker hands the reference float64 copies)."""
    x = WORKLOADS["generate"].make_inputs(p, np.random.default_rng(0))
    return x, llama.nest({k: np.asarray(v, dtype=np.float64) for k, v in x.items() if k != "prompt"}, p)


def test_reference_decode_with_the_cache_equals_recomputing_the_sequence():
    p = tiny(prompt=6, new_tokens=4)
    x, tree = _model(p)
    ops, tokens = llama.NumpyOps(p), x["prompt"][:1]
    caches = llama.empty_cache(p, 1, 10)
    _, caches = llama.forward(ops, tree, tokens[:, :6], caches, 0, p)
    cached, _ = llama.forward(ops, tree, tokens[:, 6:7], caches, 6, p)
    recomputed, _ = llama.forward(ops, tree, tokens, None, 0, p)
    assert np.allclose(cached, recomputed, rtol=0, atol=1e-12 * np.abs(recomputed).max())


def test_teacher_forced_reference_agrees_with_its_own_free_run():
    p = tiny(prompt=6, new_tokens=8)
    x, tree = _model(p)
    own = llama.greedy(tree, x["prompt"][0, :6], 8, p)
    assert llama.greedy(tree, x["prompt"][0, :6], 8, p, forced=own) == own
    other = [(t + 1) % p["vocab"] for t in own]
    assert llama.greedy(tree, x["prompt"][0, :6], 8, p, forced=other)[0] == own[0]  # the first pick sees only the prompt


def test_reference_logits_depend_on_every_layer_and_on_position():
    p = tiny()
    x, tree = _model(p)
    ops, tokens = llama.NumpyOps(p), x["prompt"][:1]
    base, _ = llama.forward(ops, tree, tokens, None, 0, p)
    assert 0.3 < np.std(base) < 10  # O(1) logits: argmax and errors witness the layers
    for layer in range(p["layers"]):
        x2 = dict(x, **{f"blocks.{layer}.wv": np.zeros_like(x[f"blocks.{layer}.wv"])})
        moved, _ = llama.forward(ops, llama.nest({k: v for k, v in x2.items() if k != "prompt"}, p), tokens, None, 0, p)
        assert np.max(np.abs(moved - base)) / np.max(np.abs(base)) > 10 * WORKLOADS["generate"].tolerance["bf16"]
    shuffled, _ = llama.forward(ops, tree, tokens[:, ::-1].copy(), None, 0, p)
    assert not np.allclose(shuffled, base)


def test_quantized_model_uses_the_shared_quantizer_and_is_smaller():
    dense, int8, int4 = (llama.model_bytes(tiny(bits=b), 2) for b in (16, 8, 4))
    assert int4 < int8 < dense
    x, tree = _model(tiny(bits=4))
    assert np.array_equal(tree["blocks"][0]["wq"], quant.dequantize(x["blocks.0.wq.q"], x["blocks.0.wq.scale"], x["blocks.0.wq.bias"]))
    assert quant in WORKLOADS["generate"].depends_on and llama in WORKLOADS["generate"].depends_on


def test_full_configuration_has_qwen25_05b_shapes():
    (p, *_) = WORKLOADS["generate"].cases("full")
    assert (p["layers"], p["d_model"], p["heads"], p["kv_heads"], p["ffn"], p["vocab"], p["tied"]) == (24, 896, 14, 2, 4864, 151_936, True)
    assert 490e6 < llama.param_count(p) < 500e6  # Qwen2.5-0.5B without its q/k/v biases: 494M


# -- every adapter, through the runner ---------------------------------------------------
@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("generate") / "run.parquet"
    cases = [Case(fw, "generate", p, dtype, QUICK_CPU_MODE[fw]) for fw in installed_frameworks() for p, dtype in CASES]
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(out), "generate")
    return runner.run(cases)


PATHS = {
    "torch": "scaled_dot_product_attention",
    "mlx": "mx.fast",
    "jax": "dynamic_update_slice",
    "tensorflow": "tf.function",
}


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_fp32_decode_matches_float64_and_greedy_tokens_are_equal(rows, framework):
    r = one_row(rows, tiny(), framework=framework, dtype="fp32")
    assert r["status"] == "ok" and r["correct"], r["reason"]
    assert r["max_rel_error"] < 1e-4 and r["effective_precision"] == "not-classified"
    assert framework in PATHS, f"add {framework}'s expected implementation words to PATHS"
    assert PATHS[framework] in r["implementation"]
    m = metrics(r)
    assert m["greedy_match_steps"] == CHECK_STEPS and m["generated_tokens"][:CHECK_STEPS] == m["reference_tokens"]
    assert m["token_agreement"] == 1.0
    assert m["cache_vs_recompute_max_rel"] < 1e-4
    assert m["pp_label"] == "pp16" and m["tg_label"] == "tg16"
    for name, n in (("prefill", PREFILL_REPEATS), ("ttft", PREFILL_REPEATS), ("generate", GENERATE_REPEATS)):
        samples, ci = m[f"{name}_samples_s"], m[f"{name}_ci_s"]  # bench.measure.repeat's samples and the median's interval
        assert len(samples) == n and m[f"{name}_s"] == float(np.median(samples))
        assert ci is None or ci[0] <= m[f"{name}_s"] <= ci[1]
    assert m["tg_tokens_per_s"] == pytest.approx(p_tokens := tiny()["new_tokens"] / m["generate_s"]) and p_tokens > 0
    for key in ("pp_tokens_per_s", "tg_tokens_per_s", "ttft_s", "decode_tokens_per_s", "model_bytes"):
        assert m[key] > 0, key
    assert m["model_bytes"] == llama.model_bytes(tiny(), 4)
    # where the row's time went (bench.phases): the worker's steps and the check's own, each a duration
    assert {"inputs", "prepare", "first call", "check", "timing"} <= set(m["phase_s"]) and all(v >= 0 for v in m["phase_s"].values())
    assert {"cache vs recompute", "prefill", "ttft", "generations", "float64 greedy"} <= set(m["check_phase_s"])
    assert sum(m["check_phase_s"].values()) <= m["phase_s"]["check"] + 1e-3 and 0 <= m["prepare_first_prefill_s"] <= m["phase_s"]["prepare"] + 1e-3
    assert r["case_wall_s"] >= sum(m["phase_s"].values()) - 1e-3


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_bf16_batch2_decode_is_within_tolerance_with_the_cache(rows, framework):
    r = one_row(rows, tiny(batch=2), framework=framework, dtype="bf16")
    assert r["status"] == "ok" and r["correct"], r["reason"]
    m = metrics(r)
    assert m["cache_vs_recompute_max_rel"] <= r["tolerance"]
    assert m["token_agreement"] >= 0.5  # observed 1.0 on CPU


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_rows_record_logit_error_and_token_agreement(rows, framework, bits):
    r = one_row(rows, tiny(bits=bits), framework=framework, dtype="bf16")
    if framework == "torch" and bits == 8:
        assert r["status"] == "unsupported" and "_weight_int8pack_mm" in r["reason"]
        return
    assert r["status"] == "ok", r["reason"]
    m = metrics(r)
    assert m["scheme"] == f"affine int{bits} g64" and m["model_bytes"] == llama.model_bytes(tiny(bits=bits), 2)
    assert r["rel_rms_error"] is not None
    # quality beside speed (bench.frameworks.llm_quality): along the row's own 1 + new_tokens greedy picks
    assert m["quality_positions"] == tiny()["new_tokens"] + 1 and 0 <= m["quality_top1_agreement"] <= 1 and m["quality_kl_mean"] >= 0
    if framework == "mlx" and r["backend"] == "cpu":
        # mlx-cpu's quantized_matmul accumulates in bf16 (see qmatmul): its logits miss the
        # bf16 tolerance (5-6e-2 against 3e-2), and the row must say so rather than pass
        assert not r["correct"] and "max_rel_error" in r["reason"], (r["max_rel_error"], r["reason"])
    else:
        assert r["correct"], r["reason"]
        assert m["token_agreement"] >= 0.5  # observed 1.0 on CPU


# -- a local checkpoint (--model) ---------------------------------------------------------
def _write_tiny_checkpoint(folder, rng) -> dict:
    """A Llama-named tiny checkpoint with a non-default rope_theta and eps (so a loader
    that ignored config.json would fail the fp32 check)."""
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "intermediate_size": 128, "vocab_size": 320, "tie_word_embeddings": False, "rope_theta": 10000.0, "rms_norm_eps": 1e-5}  # fmt: skip
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    d, f, v, hd = 64, 128, 320, 16
    t = {"model.embed_tokens.weight": rng.normal(0, 0.125, (v, d)), "model.norm.weight": 1 + rng.normal(0, 0.1, d), "lm_head.weight": rng.normal(0, 0.125, (v, d))}
    for i in range(2):
        pre = f"model.layers.{i}."
        shapes = {"self_attn.q_proj": (4 * hd, d), "self_attn.k_proj": (2 * hd, d), "self_attn.v_proj": (2 * hd, d), "self_attn.o_proj": (d, 4 * hd),
                  "mlp.gate_proj": (f, d), "mlp.up_proj": (f, d), "mlp.down_proj": (d, f)}  # fmt: skip
        t.update({pre + k + ".weight": rng.normal(0, 1 / np.sqrt(s[1]), s) for k, s in shapes.items()})
        t.update({pre + "input_layernorm.weight": 1 + rng.normal(0, 0.1, d), pre + "post_attention_layernorm.weight": 1 + rng.normal(0, 0.1, d)})
    half = len(t) // 2  # two shards, as real checkpoints come
    write_safetensors(folder / "model-00001-of-00002.safetensors", dict(list(t.items())[:half]))
    write_safetensors(folder / "model-00002-of-00002.safetensors", dict(list(t.items())[half:]))
    return t


def test_checkpoint_loader_reads_config_and_every_tensor(tmp_path):
    t = _write_tiny_checkpoint(tmp_path / "ckpt", np.random.default_rng(5))
    p = with_model(tiny(), str(tmp_path / "ckpt"))
    assert (p["d_model"], p["kv_heads"], p["vocab"], p["rope_theta"], p["norm_eps"]) == (64, 2, 320, 10000.0, 1e-5)
    x = WORKLOADS["generate"].make_inputs(p, np.random.default_rng(0))
    assert np.array_equal(x["blocks.1.w_down"], t["model.layers.1.mlp.down_proj.weight"].astype(np.float32))
    assert np.array_equal(x["head"], t["lm_head.weight"].astype(np.float32))
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4}))
    with pytest.raises(ValueError, match="biases"):
        checkpoint.model_params(tmp_path / "q")


def test_bf16_safetensors_are_read_exactly(tmp_path):
    import struct

    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    raw = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(raw)]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + raw)
    assert np.array_equal(checkpoint.read_safetensors(tmp_path / "m.safetensors")["w"], values)


@pytest.mark.parametrize("framework, switch", [("torch", "TORCHDYNAMO_DISABLE"), ("mlx", "MLX_DISABLE_COMPILE")])
def test_the_fixed_shape_step_compiled_paths_trace_decodes_like_float64(tmp_path, framework, switch):
    """The compiled decode step's own formulation (position as a tensor, cache written at
    it, attention over the whole cache under a length mask) checked against float64 with
    the compiler switched off by its documented variable, so the check costs no C++ build;
    the GPU run (scripts/decode_targets.py) times it compiled."""
    spec = dataclasses.replace(CATALOG[framework], env={**CATALOG[framework].env, switch: "1"})
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu", suite="full"), ResultsWriter(tmp_path / "r.parquet"), "static",
                    frameworks={framework: spec})  # fmt: skip
    (r,) = runner.run([Case(framework, "generate", tiny(), "fp32", "compiled")])
    assert r["status"] == "ok" and r["correct"], r["reason"]
    assert r["mode"] == "compiled" and "compile" in r["implementation"] and "mask" in r["implementation"]
    m = metrics(r)
    assert m["greedy_match_steps"] == CHECK_STEPS and m["cache_vs_recompute_max_rel"] < 1e-4


def test_eager_tensorflow_runs_op_by_op_and_decodes_like_float64(tmp_path):
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(tmp_path / "r.parquet"), "tf-eager", frameworks=CATALOG)
    (r,) = runner.run([Case("tensorflow", "generate", tiny(), "fp32", "eager")])
    assert r["status"] == "ok" and r["correct"], r["reason"]
    assert r["mode"] == "eager" and r["implementation"].startswith("eager TF")
    assert metrics(r)["greedy_match_steps"] == CHECK_STEPS


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_a_local_checkpoint_runs_through_the_runner(tmp_path, framework):
    _write_tiny_checkpoint(tmp_path / "ckpt", np.random.default_rng(5))
    p = with_model(tiny(), str(tmp_path / "ckpt"))
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(tmp_path / "r.parquet"), "ckpt")
    (r,) = runner.run([Case(framework, "generate", p, "fp32", QUICK_CPU_MODE[framework])])
    assert r["status"] == "ok" and r["correct"], r["reason"]
    assert metrics(r)["greedy_match_steps"] == CHECK_STEPS


def _write_word_tokenizer(folder, vocab: int) -> None:
    """A word-level tokenizer.json over the bundled text's words (Hugging Face `tokenizers`),
    ids below the tiny checkpoint's vocabulary: what a real checkpoint folder carries."""
    import re

    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from workloads import texts

    words = ["[UNK]"] + sorted(set(re.findall(r"\w+|[^\w\s]", texts.TEXT)))[: vocab - 1]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))


def test_a_checkpoint_without_a_tokenizer_has_no_perplexity_and_says_why(tmp_path):
    _write_tiny_checkpoint(tmp_path / "ckpt", np.random.default_rng(5))
    p = with_model(tiny(), str(tmp_path / "ckpt"))
    assert checkpoint.text_tokens(tiny()) == (None, "random weights: perplexity needs a checkpoint (--model DIR)")
    ids, why = checkpoint.text_tokens(p)
    assert ids is None and "no tokenizer.json" in why


@pytest.mark.integration
@pytest.mark.parametrize("framework", each_framework())
def test_a_checkpoint_with_a_tokenizer_scores_the_bundled_text(tmp_path, framework):
    pytest.importorskip("tokenizers")
    _write_tiny_checkpoint(tmp_path / "ckpt", np.random.default_rng(5))
    _write_word_tokenizer(tmp_path / "ckpt", 320)
    p = with_model(tiny(), str(tmp_path / "ckpt"))
    ids, what = checkpoint.text_tokens(p, 32)
    assert ids is not None and ids.size == 32 and "Gettysburg" in what
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(tmp_path / "r.parquet"), "ppl")
    (r,) = runner.run([Case(framework, "generate", p, "fp32", QUICK_CPU_MODE[framework])])
    assert r["status"] == "ok" and r["correct"], r["reason"]
    m = metrics(r)
    # the row's own model, in float64 here: the perplexity the framework reported
    tree = llama.nest({k: v.astype(np.float64) for k, v in WORKLOADS["generate"].make_inputs(p, np.random.default_rng(0)).items() if k != "prompt"}, p)
    logits, _ = llama.forward(llama.NumpyOps(p), tree, ids[None], None, 0, p, scored_from=0)
    from bench.frameworks.llm_quality import perplexity

    assert m["perplexity_tokens"] == 32 and m["perplexity"] == pytest.approx(perplexity(logits[0], ids), rel=1e-3)
