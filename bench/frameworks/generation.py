"""What every adapter's `generate` shares: turning a framework's prefill and decode step
into a Prepared whose call is one decode step at a fixed cache position, and whose
`metrics` runs the user-facing measurements (prefill, time to first token, greedy
generation) on the same model and cache, after the check and before the timing.

An adapter supplies four functions on device data:
  prefill(tokens) -> logits    tokens (B, T) from position 0; fills the cache
  decode(tokens, pos) -> out   tokens (B,) at position `pos`; out holds the logits (B, V)
                               and whatever the barrier must wait on (the new cache)
  logits_of(out) -> logits     the logits part of `out`
  argmax(logits) -> np.ndarray the greedy picks, read back on the host (a sync)
and `put(np_tokens)` to move token ids to the device. An adapter whose compiled step
also takes the greedy pick (and the position's advance) inside the same graph passes
  step_greedy(tokens, pos) -> picks   the next tokens (B,) on the device, decode + argmax
                                      in one call; the generation loop reads each pick back
                                      with `to_host` and feeds the device picks to the next step
so no host work sits between two replays but the read-back every generator does.
An adapter may pass `recompute(tokens) -> logits`, the last position's logits of a
sequence computed without the cache, for the cache-vs-recompute check (default: its
prefill of the sequence; JAX scans the blocks there, so the check compiles one block).
Quantized rows pass `score(tokens)` and `dense_score(tokens)`: the logits at the scored
positions of one sequence (the prompt's last onwards), through the quantized model and through the same weights unquantized
(bench.frameworks.llm_quality compares them). Prefill, time to first token and
greedy generation are timed here through `bench.measure.repeat` (the adapter's barrier,
a fixed number of repetitions: each is too long to sample adaptively); the median is the
headline and the samples and the median's 95% interval are stored beside it (null where
too few samples bound it). Every figure is labelled so it sits beside llama-bench
(pp512 / tg128) and mlx-lm's tokens-per-sec.

`mode` is what the adapter built (eager, or compiled: its prefill and decode step went
through the framework's compiler); it lands on the Prepared the worker checks.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from bench import measure
from bench.frameworks import llm_quality
from bench.frameworks.base import Prepared, Unsupported
from bench.phases import Phases
from bench.precision import FORMATS
from workloads import checkpoint, generate, llama, quant

PREFILL_REPEATS = measure.FIGURE_REPEATS  # the fewest whose median has a bounded 95% interval
GENERATE_REPEATS = measure.FIGURE_REPEATS


def weight_bits(p: Any, supported: tuple[int, ...] = (4, 8, 16)) -> int:
    """The case's weight width (16 = dense), or Unsupported naming what this adapter has."""
    bits = int(p["bits"])
    if bits not in supported:
        raise Unsupported(f"no {bits}-bit weight path in this adapter")
    return bits


def uncached_forward(ops: Any, tree: Any, tokens: Any, p: Any, scored_from: int | None = None) -> Any:
    """llama.forward without a cache: the logits of the last position of `tokens`, or of
    positions `scored_from` onwards (an adapter may pass its own way of running the blocks)."""
    return llama.forward(ops, tree, tokens, None, 0, p, scored_from=scored_from)[0]


def quality_scorers(adapter: Any, p: Any, dtype: str, x: Any, ops: Any, tree: Any,
                    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda f: f,
                    finish: Callable[[Any], Any] = lambda t: t,
                    forward: Callable[..., Any] = uncached_forward) -> dict[str, Callable[[Any], Any]]:
    """Quantized rows' scorers (bench.frameworks.llm_quality compares them): the logits at
    the scored positions of a sequence (the prompt's last and every generated one; the
    head runs nowhere else), no cache, through the row's own model (`tree`) and through
    the same weights unquantized. Every adapter's ops pick the quantized or the dense matmul
    from the weight itself, so one `ops` serves both trees. `wrap` is how the framework runs
    a scoring forward (jax.jit, torch.inference_mode, TF pinned to its device); `finish` what
    the adapter does to a tree it builds (torch: RMSNorm gains in fp32); `forward` the
    uncached forward itself (uncached_forward's signature; JAX scans the blocks).

    The dense model is built when it is scored, after the row's generation figures and its
    peak memory are read: built at prepare it sat on the device beside the quantized model
    through the whole row.

    A checkpoint's rows (`--model DIR`) also get `text_score`: the row's own model's logits
    at every position of a text (its perplexity, llm_quality.perplexity)."""
    found: dict[str, Callable[[Any], Any]] = {}

    def scorer(q: Any, first: int) -> Callable[..., Any]:
        return wrap(lambda weights, tokens: forward(ops, weights, tokens, q, first))

    if p.get("model"):
        text = scorer(p, 0)
        found["text_score"] = lambda tokens: text(tree, tokens)
    if weight_bits(p) == 16:
        return found
    dense_p = {**p, "bits": 16}
    first = p["prompt"] - 1  # the positions scored: the prompt's last (it picks the first token) onwards

    def dense_tree() -> Any:
        def to_device(a: Any) -> Any:
            return adapter.asarray(a, dtype)

        return finish(llama.nest(llama.dense_of(x), dense_p, lambda name, flat: to_device(flat[name]), to_device))

    quantized, dense = scorer(p, first), scorer(dense_p, first)
    return {**found, "score": lambda tokens: quantized(tree, tokens), "dense_score": lambda tokens: dense(dense_tree(), tokens)}


def stored_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Quantized codes as the dequant-fused paths (qmatmul, generate) store them: int4 two per byte, int8 as uint8."""
    return quant.pack_nibbles(codes) if bits == 4 else np.asarray(codes, dtype=np.uint8)


def dequant_fused_weights(bits: int, group: int, dtype: str) -> str:
    """The `implementation` words for the dequant-inside-the-compiled-step paths (JAX, TF)."""
    return f"dense {dtype}" if bits == 16 else f"dequant-fused uint8 codes int{bits} g{group}, {dtype} activations"


def _figure(name: str, r: measure.Repeated) -> dict[str, Any]:
    """`<name>_s` (median), `<name>_samples_s` and `<name>_ci_s` ([low, high], null when unbounded)."""
    s = r.summary
    ci = [s.ci_low, s.ci_high] if math.isfinite(s.ci_low) and math.isfinite(s.ci_high) else None
    return {f"{name}_s": s.median, f"{name}_samples_s": list(r.samples_s), f"{name}_ci_s": ci}


def _no_barrier(out: Any) -> None:
    """For figures whose call already read its result back to the host (a greedy pick)."""


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1.0))


def _generation_metrics(
    adapter: Any,
    p: dict[str, Any],
    dtype: str,
    context: Any,
    full: Any,
    first_logits: np.ndarray,
    prefill: Callable[[Any], Any],
    recompute: Callable[[Any], Any],
    argmax: Callable[[Any], np.ndarray],
    decode_from: Callable[[np.ndarray], list[np.ndarray]],
    quality: Callable[[list[np.ndarray]], dict[str, Any]] | None = None,
    text: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The generation figures beside the timed decode step (cache check, prefill, TTFT,
    whole generations, memory): apart from generation_prepared so it reads as the set-up."""
    n_prompt, batch = p["prompt"], p["batch"]
    found: dict[str, Any] = {}
    phases = Phases()  # where the row's check time goes (bench.phases); assess adds its float64 greedy
    with phases("prefill"):
        pp = measure.repeat(lambda: prefill(context), adapter.barrier, PREFILL_REPEATS)
    with phases("ttft"):
        ttft = measure.repeat(lambda: argmax(prefill(context)), _no_barrier, PREFILL_REPEATS)
    found.update(_figure("prefill", pp), **_figure("ttft", ttft))
    found.update(pp_label=f"pp{n_prompt}", pp_tokens_per_s=batch * n_prompt / pp.summary.median)
    with phases("generations"):
        first = argmax(prefill(context))  # the first token comes from the prefill (timed above as TTFT)
        tokens = decode_from(first)  # the tokens checked; then the timed repetitions of the same decoding
        generation = measure.repeat(lambda: decode_from(first), _no_barrier, GENERATE_REPEATS)
    found.update(_figure("generate", generation))
    found.update(
        tg_label=f"tg{p['new_tokens']}",
        tg_tokens_per_s=batch * p["new_tokens"] / generation.summary.median,
        generated_tokens=[int(t[0]) for t in tokens],
        model_bytes=llama.model_bytes(p, FORMATS[dtype].itemsize),
        kv_cache_bytes=generate.kv_cache_bytes(p, FORMATS[dtype].itemsize, n_prompt + p["new_tokens"]),
    )
    found["peak_memory_bytes"] = adapter.peak_memory().device_bytes
    # cache vs recompute (after the peak: a check, whose own buffers are not the generation's):
    # this framework's decode logits against its own computation of prompt+1 without the cache
    with phases("cache vs recompute"):
        recomputed = adapter.to_numpy(recompute(full))
    found["cache_vs_recompute_max_rel"] = _rel(first_logits, recomputed)
    if quality is not None:  # quantized rows: agreement with the same weights unquantized
        with phases("quality"):
            found.update(quality(tokens))
    if text is not None:  # a checkpoint's rows: perplexity on a short real text
        with phases("perplexity"):
            found.update(text())
    found["check_phase_s"] = phases.rounded()
    adapter.barrier(prefill(context))  # restore the context of the timed step
    return found


def generation_prepared(
    adapter: Any,
    p: dict[str, Any],
    dtype: str,
    prompt: np.ndarray,
    *,
    prefill: Callable[[Any], Any],
    decode: Callable[[Any, int], Any],
    put: Callable[[np.ndarray], Any],
    argmax: Callable[[Any], np.ndarray],
    implementation: str,
    logits_of: Callable[[Any], Any] = lambda out: out,
    mode: str = "eager",
    step_greedy: Callable[[Any, int], Any] | None = None,
    to_host: Callable[[Any], np.ndarray] | None = None,
    recompute: Callable[[Any], Any] | None = None,
    score: Callable[[Any], Any] | None = None,
    dense_score: Callable[[Any], Any] | None = None,
    text_score: Callable[[Any], Any] | None = None,
) -> Prepared:
    n_prompt = p["prompt"]
    prompt = np.asarray(prompt, dtype=np.int64)
    context, full = put(prompt[:, :n_prompt]), put(prompt)
    step_token = put(prompt[:, n_prompt])
    started = time.perf_counter()
    adapter.barrier(prefill(context))  # the context the timed decode step sees (and compiles prefill)
    first_prefill_s = time.perf_counter() - started  # part of the worker's "prepare": its compile or first-use kernels
    first_out: dict[str, np.ndarray] = {}

    def call() -> Any:
        return decode(step_token, n_prompt)

    def checked(out: Any) -> Any:
        logits = logits_of(out)
        if "logits" not in first_out:
            first_out["logits"] = adapter.to_numpy(logits)
        return logits

    def decode_from(picks: np.ndarray) -> list[np.ndarray]:
        """Greedy decoding after the context: step i writes cache position prompt+i before
        any step reads it, so repetitions need no new prefill."""
        tokens = [picks]
        if step_greedy is not None and to_host is not None:
            on_device = put(picks)
            for i in range(p["new_tokens"]):
                on_device = step_greedy(on_device, n_prompt + i)
                tokens.append(to_host(on_device))  # each pick read back, as every generator does
            return tokens
        for i in range(p["new_tokens"]):
            picks = argmax(logits_of(decode(put(picks), n_prompt + i)))
            tokens.append(picks)
        return tokens

    quality = None
    if score is not None and dense_score is not None:

        def quality(tokens: list[np.ndarray]) -> dict[str, Any]:
            sequence = np.concatenate([prompt[:1, :n_prompt], np.stack([t[:1] for t in tokens[:-1]], axis=1)], axis=1)
            dense, quantized = (adapter.to_numpy(f(put(sequence))) for f in (dense_score, score))
            return llm_quality.compare(dense[0], quantized[0])  # positions prompt-1 onwards (quality_scorers)

    text = None
    if text_score is not None:

        def text() -> dict[str, Any]:
            # no longer than the case's own sequence: the positions every adapter's model is built for (RoPE tables)
            ids, what = checkpoint.text_tokens(p, min(checkpoint.TEXT_TOKENS, p["prompt"] + p["new_tokens"]))
            if ids is None:
                return {"perplexity": None, "perplexity_note": what}
            logits = adapter.to_numpy(text_score(put(ids[None])))[0]
            return {"perplexity": llm_quality.perplexity(logits, ids), "perplexity_tokens": int(ids.size), "perplexity_text": what}

    def metrics() -> dict[str, Any]:
        found = _generation_metrics(adapter, p, dtype, context, full, first_out["logits"], prefill, recompute or prefill, argmax, decode_from, quality, text)
        found["prepare_first_prefill_s"] = round(first_prefill_s, 3)
        return found

    return Prepared(call, implementation, checked=checked, metrics=metrics, mode=mode)
