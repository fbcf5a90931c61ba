"""LLM inference: prefill and greedy decode of the Llama-style model in workloads.llama,
with a KV cache, dense (bits=16: weights in the row's dtype) or int8/int4 group-wise
(affine, g64, workloads.quant) weights.

The timed call — what `median_s` means — is ONE DECODE STEP at a fixed cache position:
batch `batch`, one new token per sequence at position `prompt` after a prefilled
context of `prompt` tokens (the cache is written at that position and attention reads
positions 0..prompt). So `median_s` is the per-token decode latency at that context
length and `metrics.decode_tokens_per_s` = batch / median_s. The figures users trade
are gathered by the adapter (bench/frameworks/generation.py) between the check and the
timing, on the same model and cache, and stored in `metrics`:

* `pp_tokens_per_s` — prefill throughput, batch·prompt / prefill time, labelled
  `pp_label` ("pp512" = llama-bench's prompt processing at 512 tokens);
* `ttft_s` — time to first token: prefill + greedy pick read back on the host;
* `tg_tokens_per_s` — greedy generation of `new_tokens` tokens, one decode step per
  token with each pick read back (as llama-bench tg / mlx-lm generation tokens-per-sec),
  batch·new_tokens / time, labelled `tg_label` ("tg128");
* `model_bytes`, `params`, `peak_memory_bytes` (the adapter's counter after generation).

Correctness: the checked output is the decode step's logits (row 0 of the batch),
against a float64 forward that recomputes the whole prompt+1 sequence WITHOUT a cache —
so it checks prefill, cache and decode together. `assess` adds the greedy tokens: the
first `CHECK_STEPS` tokens the framework generated against float64 greedy decoding
(fp32 rows must match all of them: `greedy_match_steps`; every row records
`token_agreement`, the share of steps whose pick equals float64's given the same
prefix — teacher-forced, so one near-tie does not end the comparison), and the
adapter's own cache-vs-recompute gap (its decode logits against its own prefill of the
prompt+1 sequence). Quantized rows' reference is the dequantized model, so errors
judge the kernels; the scheme's own cost is not part of this workload (see qmatmul).
A deep model's logits compound many roundings, so they witness no single number
format: rows are `not-classified` (precision_witness=False), and the tolerance is on
the logits' max relative error.

Tokens travel as int64 arrays (never rounded to the dtype); vocabularies above 256 are
not exactly representable in bf16.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workloads import checkpoint, llama, parallel, quant
from workloads.base import MODES, Inputs, Params, Workload, params_key

CHECK_STEPS = 16  # greedy steps compared with the float64 reference


def _case(layers: int, d_model: int, heads: int, kv_heads: int, ffn: int, vocab: int, tied: bool, prompt: int, new_tokens: int, batch: int, bits: int) -> dict[str, Any]:
    return {
        "layers": layers, "d_model": d_model, "heads": heads, "kv_heads": kv_heads, "ffn": ffn, "vocab": vocab, "tied": tied,
        "prompt": prompt, "new_tokens": new_tokens, "batch": batch, "bits": bits, "group": 64,
    }  # fmt: skip


def tiny(prompt: int = 16, new_tokens: int = 16, batch: int = 1, bits: int = 16) -> dict[str, Any]:
    return _case(2, 128, 4, 2, 256, 512, False, prompt, new_tokens, batch, bits)


def qwen25_05b(prompt: int = 512, new_tokens: int = 128, batch: int = 1, bits: int = 16) -> dict[str, Any]:
    """Qwen2.5-0.5B's shapes: 24 layers, hidden 896, 14 query / 2 KV heads (hd 64),
    intermediate 4864, vocabulary 151,936, tied embeddings (494M parameters)."""
    return _case(24, 896, 14, 2, 4864, 151_936, True, prompt, new_tokens, batch, bits)


def with_model(p: Params, folder: str) -> dict[str, Any]:
    """A case's parameters with the architecture (and weights) of a local checkpoint."""
    return {**p, **checkpoint.model_params(folder)}


def _inputs(p: Params, rng: np.random.Generator) -> Inputs:
    out = llama.init(p, rng, keep_dense=p["bits"] != 16)  # quantized: the same model unquantized beside it (quality)
    out["prompt"] = rng.integers(0, p["vocab"], size=(p["batch"], p["prompt"] + 1), dtype=np.int64)
    return out


_TREE: dict[str, Any] = {}  # the last case's float64 model: its reference and greedy checks share it


def _values_key(x: Inputs, p: Params) -> tuple[Any, ...]:
    """A case's identity in this process: the params and the weights' values (a few entries
    of the embedding and the final norm: a case's params and dtype fix its draw), not the
    arrays' identity: the worker hands the reference and the reference extras float64
    copies and `assess` the stored arrays."""
    embed, norm = np.asarray(x["embed"]), np.asarray(x["norm"])
    return (params_key(p), np.asarray(embed.reshape(-1)[:64], dtype=np.float64).tobytes(), np.asarray(norm, dtype=np.float64).tobytes())


def _tree(x: Inputs, p: Params) -> dict[str, Any]:
    """The float64 model of a case's stored weights (quantized linears dequantized), built
    once per case and process: the reference and the greedy checks both read it (at
    Qwen2.5-0.5B's shape it is 4 GB, and a quantized case dequantizes ~170 matrices)."""
    key = _values_key(x, p)
    if _TREE.get("key") != key:
        _TREE.clear()
        # 4 GB of float64, converted (and the quantized linears dequantized) side by side: workloads.parallel
        quantized = [name for name in llama.linear_shapes(p) if name + ".q" in x]
        codes = {f"{name}.{part}" for name in quantized for part in ("q", "scale", "bias")}
        plain = {k: v for k, v in x.items() if k != "prompt" and k not in codes and not k.startswith(llama.DENSE)}
        weights = parallel.map_values(lambda v: np.asarray(v, dtype=np.float64), plain)
        weights.update(zip(quantized, parallel.thread_map(lambda n: quant.dequantize(*(np.asarray(x[f"{n}.{part}"], dtype=np.float64) for part in ("q", "scale", "bias"))), quantized)))
        _TREE.update(key=key, tree=llama.nest(weights, p))
    return _TREE["tree"]


def _reference(x: Inputs, p: Params) -> np.ndarray:
    """Logits (1, V) of the last of prompt+1 tokens of sequence 0, recomputed without a cache."""
    tokens = np.asarray(x["prompt"][:1], dtype=np.int64)
    logits, _ = llama.forward(llama.NumpyOps(p), _tree(x, p), tokens, None, 0, p)
    return logits


def _flops(p: Params) -> float:
    """One decode step: 2·batch·(matmul weights) + attention over prompt+1 positions
    (QKᵀ and PV: 4·batch·heads·hd·(prompt+1) per layer)."""
    linear = sum(a * b for a, b in llama.linear_shapes(p).values())
    attention = 4.0 * p["batch"] * p["heads"] * llama.head_dim(p) * (p["prompt"] + 1) * p["layers"]
    return 2.0 * p["batch"] * linear + attention


def kv_cache_bytes(p: Params, itemsize: int, positions: int) -> float:
    return float(2 * p["layers"] * p["batch"] * p["kv_heads"] * llama.head_dim(p) * positions * itemsize)


def _bytes(p: Params, itemsize: int) -> float:
    """One decode step reads every weight once (the embedding: one row per sequence, not
    counted) and the KV cache up to the position: the bound batch-1 decode sits on."""
    embedding = p["vocab"] * p["d_model"] * itemsize
    return llama.model_bytes(p, itemsize) - embedding + (embedding if p["tied"] and p["bits"] == 16 else 0) + kv_cache_bytes(p, itemsize, p["prompt"] + 1)


def _rates(p: Params, itemsize: int) -> dict[str, float]:
    return {"decode_tokens_per_s": float(p["batch"])}


_GREEDY: dict[str, Any] = {}  # the last case's float64 prefill and teacher-forced decodings


def _check_steps(p: Params) -> int:
    return min(CHECK_STEPS, p["new_tokens"] + 1)


def _float64_greedy(x: Inputs, p: Params, forced: tuple[int, ...] | None = None) -> list[int]:
    """float64 greedy decoding of sequence 0's prompt, `_check_steps` picks: free-running
    (forced=None) or teacher-forced on a framework's tokens. The prefill and the decodings
    are remembered for the last case in this process (its eager and compiled rows read
    them; a 0.5B float64 run is seconds of CPU)."""
    key = _values_key(x, p)
    if _GREEDY.get("key") != key:
        _GREEDY.clear()
        prompt = np.asarray(x["prompt"][0, : p["prompt"]], dtype=np.int64)
        _GREEDY.update(key=key, prompt=prompt, runs={}, prefill=llama.prefill(_tree(x, p), prompt, p["prompt"] + p["new_tokens"] + 1, p))
    runs = _GREEDY["runs"]
    if forced not in runs:
        runs[forced] = llama.greedy(_tree(x, p), _GREEDY["prompt"], _check_steps(p), p, forced=list(forced) if forced else None, start=_GREEDY["prefill"])
    return runs[forced]


def _reference_extras(x: Inputs, p: Params) -> Inputs:
    """The free-running float64 greedy tokens every row of the case is compared with:
    computed once with the reference (bench.case_cache shares both across the run's
    workers), so a framework that generated exactly these tokens costs no float64 work."""
    return {"greedy_tokens": np.asarray(_float64_greedy(x, p), dtype=np.int64)}


def _assess(output: np.ndarray, x: Inputs, p: Params, dtype: str, metrics: dict[str, Any], extras: Inputs) -> list[str]:
    problems = []
    steps = _check_steps(p)
    got = [int(t) for t in metrics.get("generated_tokens", [])][:steps]
    started = time.perf_counter()
    ref_tokens = [int(t) for t in extras["greedy_tokens"]]
    metrics.update(reference_tokens=ref_tokens, check_steps=steps)
    if len(got) < steps:
        problems.append(f"the adapter generated {len(got)} tokens, {steps} needed for the check")
    else:
        # free-running: how many steps before the first disagreement (one near-tie in the
        # logits ends it, so at reduced precision it says little); teacher-forced: the
        # share of steps where the framework picked what float64 picks given the
        # framework's own prefix (each step judged on its own)
        same = next((i for i, (a, b) in enumerate(zip(got, ref_tokens)) if a != b), steps)
        # fed its own picks, float64 picks them again: a framework that generated exactly
        # float64's tokens needs no second float64 decoding (seconds of host CPU at 0.5B)
        forced = ref_tokens if got == ref_tokens else _float64_greedy(x, p, tuple(got))
        metrics["greedy_match_steps"] = same
        metrics["token_agreement"] = float(np.mean([a == b for a, b in zip(got, forced)]))
        if dtype == "fp32" and same < steps:
            problems.append(f"fp32 greedy tokens diverge from float64 at step {same} of {steps}")
    metrics.setdefault("check_phase_s", {})["float64 greedy"] = round(time.perf_counter() - started, 3)  # teacher-forced: host CPU, no framework
    gap = metrics.get("cache_vs_recompute_max_rel")
    tolerance = GENERATE.tolerance[dtype]
    if gap is None or not gap <= tolerance:
        problems.append(f"decode with the KV cache differs from recomputing the sequence: {gap} > {tolerance}")
    metrics.update(params=llama.param_count(p), scheme="dense" if p["bits"] == 16 else f"affine int{p['bits']} g{p['group']}")
    return problems


GENERATE = Workload(
    name="generate",
    summary="LLM inference (Llama-style, GQA, KV cache): one decode step timed; pp/tg/ttft in metrics",
    dtypes=("fp32", "bf16"),  # fp16: add it here and a tolerance (1e-2 observed-safe on CPU)
    suites={
        "quick": [tiny()],  # int8/int4 at tiny size: tests/test_generate.py; the quick suite stays < 40 s
        "full": [
            # pp512/tg128 (llama-bench's pair) at batch 1 dense, int8 and int4, and dense at
            # batch 4. Prompt 128 (batch 1 dense; batch 4 dense and int4) left the suite so that
            # it takes <= 15 min with --reference at one process on an H200: a 0.5B decode step
            # reads its weights whatever the context (512 positions of KV cache are 6 MiB of a
            # 1 GB model), and batch 16 and 32 at the same prompt are scripts/decode_targets.py
            # --only sweep-* --batches 16,32; `-p prompt=128` still runs any of them.
            *(qwen25_05b(512, 128, 1, bits) for bits in (16, 8, 4)),
            qwen25_05b(512, 128, 4, 16),
        ],
    },
    flops=_flops,
    bytes_moved=_bytes,
    make_inputs=_inputs,
    reference=_reference,
    tolerance={"fp32": 1e-4, "bf16": 3e-2},  # observed on CPU: ~1e-6; ≤ 1.4e-2 (mlx-cpu quantized bf16: 5-6e-2)
    check_index=lambda p: (slice(0, 1),),
    precision_witness=False,
    assess=_assess,
    reference_extras=_reference_extras,
    rates=_rates,
    depends_on=(llama, quant, checkpoint),
    modes=MODES,
    timing_budget_s=1.0,  # the decode step's timing; the row's own generations time ~900 more steps
    shared_inputs=True,  # ~0.5 billion weights and a float64 forward per Qwen-shaped case
)
