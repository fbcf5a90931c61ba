"""Reference decoders: the tools users run instead of a benchmark's own model code.

transformers' `generate` (dynamic cache: eager; static cache: its generate compiles the
decode step with torch.compile) and mlx-lm's `generate_step`, each on a model of the
same shape as a `workloads.generate` case, built from a config with random weights —
nothing is downloaded. The architecture is Llama's (`LlamaForCausalLM`, mlx-lm's
`llama.Model`): pre-RMSNorm, RoPE, grouped-query attention, SwiGLU, tied embeddings,
no q/k/v biases — exactly workloads.llama, so a reference row and a framework row do the
same work per token. (Qwen2.5 itself adds q/k/v biases: three small adds per layer.)

The figures are the ones generation.py stores for the frameworks — pp (prefill tokens/s),
TTFT, tg (decode tokens/s over `new_tokens` greedy steps after the first token) — each a
median over `repeats` runs through bench.measure.repeat, with the samples. These rows
are references, never part of the framework ranking: their `implementation` names the
tool and its version.
"""

from __future__ import annotations

import importlib.metadata
import math
import time
from typing import Any, Mapping

import numpy as np

from bench import measure
from bench.measure import FIGURE_REPEATS
from workloads import llama


def tool_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _interval(summary: Any, shift: float = 0.0) -> list[float] | None:
    """The median's 95% interval less `shift`, null where too few samples bound it."""
    if not (math.isfinite(summary.ci_low) and math.isfinite(summary.ci_high)):
        return None
    return [summary.ci_low - shift, summary.ci_high - shift]


def _figures(prefix_s: measure.Repeated, full_s: measure.Repeated, n_prompt: int, new_tokens: int, batch: int) -> dict[str, Any]:
    """pp from the time to the first token; tg from the difference between a run of
    1 + new_tokens tokens and a run of 1 token (the prefill and first pick cancel). The
    generation's samples and interval are the full runs' less the median TTFT (a few
    percent of a 128-token run), so they read in the same unit as the frameworks' rows."""
    ttft, total = prefix_s.summary.median, full_s.summary.median
    return {
        "pp_tokens_per_s": batch * n_prompt / ttft,
        "ttft_s": ttft,
        "ttft_samples_s": list(prefix_s.samples_s),
        "ttft_ci_s": _interval(prefix_s.summary),
        "generate_s": total - ttft,
        "generate_samples_s": [s - ttft for s in full_s.samples_s],
        "generate_ci_s": _interval(full_s.summary, ttft),
        "tg_tokens_per_s": batch * new_tokens / (total - ttft),
        "pp_label": f"pp{n_prompt}",
        "tg_label": f"tg{new_tokens}",
    }


# -- transformers -----------------------------------------------------------------------
def hf_model(p: Mapping[str, Any], device: str, dtype: str = "bf16") -> Any:
    """LlamaForCausalLM of the case's shape, random weights drawn on the device itself (a
    0.5B model initialised on the host and copied over took seconds more), in `dtype`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=p["vocab"], hidden_size=p["d_model"], intermediate_size=p["ffn"], num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"], num_key_value_heads=p["kv_heads"], head_dim=llama.head_dim(p),
        rms_norm_eps=llama.norm_eps(p), rope_theta=llama.rope_theta(p), tie_word_embeddings=bool(p["tied"]),
        max_position_embeddings=max(4096, p["prompt"] + p["new_tokens"] + 1), attention_bias=False, mlp_bias=False,
    )  # fmt: skip
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.to(dtype=torch_dtype).eval()


def _dynamo_graphs() -> int:
    """Graphs torch.compile (dynamo) has compiled in this process so far."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(counters["stats"]["unique_graphs"])


def hf_generate(model: Any, p: Mapping[str, Any], cache: str, repeats: int = FIGURE_REPEATS, seed: int = 0) -> dict[str, Any]:
    """transformers' generate, greedy, `cache` = "dynamic" (its default, eager) or "static"
    (where transformers compiles the decode step, on CUDA: first_call_s holds that compile).
    The first call (compile), one more warm-up run (CUDA graphs are recorded on a later call
    than the compile), then `repeats` runs of 1 token and of 1 + new_tokens. What dynamo
    compiled is counted: `compiled_graphs` in the first call and `graphs_compiled_later`
    after it (a recompiling step would be timed with its compiles: then the row says so)."""
    import torch

    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    prompt = torch.from_numpy(rng.integers(0, p["vocab"], size=(p["batch"], p["prompt"]))).to(device)
    mask = torch.ones_like(prompt)
    kw: dict[str, Any] = dict(do_sample=False, attention_mask=mask, pad_token_id=0)
    static = None
    if cache == "static":
        # ONE StaticCache for every call, reset before each. generate(cache_implementation="static")
        # makes a new one per call (transformers 5.17 _prepare_static_cache), whose new tensors
        # recompile the compiled step where dynamo guards their address (torch's default before
        # 2.10; seen on the CPU: 5 graphs for 5 calls, 1 with the reused cache) or re-record its
        # CUDA graphs where it does not: each timed call would hold a compile.
        from transformers import StaticCache

        static = StaticCache(config=model.config, max_cache_len=p["prompt"] + p["new_tokens"] + 1)

    def run(n: int) -> Any:
        with torch.no_grad():
            if static is None:
                return model.generate(prompt, max_new_tokens=n, min_new_tokens=n, **kw)
            static.reset()
            return model.generate(prompt, max_new_tokens=n, min_new_tokens=n, past_key_values=static, **kw)

    sync = lambda out: torch.cuda.synchronize() if device.type == "cuda" else None  # noqa: E731
    graphs = _dynamo_graphs()
    t0 = time.perf_counter()
    sync(run(1 + p["new_tokens"]))  # the first call: compiles the static-cache step
    first_call = time.perf_counter() - t0
    compiled = _dynamo_graphs() - graphs
    sync(run(1 + p["new_tokens"]))  # a warm-up: CUDA graphs are recorded on a later call than the compile, and without it
    # the dynamic cache's first 1-token runs (on a busy 2-core CPU) took longer than its whole generations
    prefix = measure.repeat(lambda: run(1), sync, repeats)
    full = measure.repeat(lambda: run(1 + p["new_tokens"]), sync, repeats)
    later = _dynamo_graphs() - graphs - compiled
    import transformers

    out = _figures(prefix, full, p["prompt"], p["new_tokens"], p["batch"])
    how = "eager" if cache == "dynamic" else ("one StaticCache reset per call, " + (
        f"decode step compiled by generate: {compiled} graph(s)" if compiled else "not compiled by generate here"))
    out.update(
        implementation=f"transformers {transformers.__version__} generate ({cache} cache, {how}) + torch {torch.__version__}, LlamaForCausalLM sdpa",
        first_call_s=first_call,
        mode="compiled" if cache == "static" else "eager",
        compiled_graphs=compiled,
        graphs_compiled_later=later,
    )
    return out


# -- mlx-lm -----------------------------------------------------------------------------
def mlx_lm_model(p: Mapping[str, Any], bits: int) -> Any:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_map
    from mlx_lm.models import llama as mlx_llama

    args = mlx_llama.ModelArgs(
        model_type="llama", hidden_size=p["d_model"], num_hidden_layers=p["layers"], intermediate_size=p["ffn"],
        num_attention_heads=p["heads"], rms_norm_eps=llama.norm_eps(p), vocab_size=p["vocab"], head_dim=llama.head_dim(p),
        num_key_value_heads=p["kv_heads"], rope_theta=llama.rope_theta(p), tie_word_embeddings=bool(p["tied"]),
    )  # fmt: skip
    mx.random.seed(0)
    model = mlx_llama.Model(args)
    model.update(tree_map(lambda a: a.astype(mx.bfloat16) if mx.issubdtype(a.dtype, mx.floating) else a, model.parameters()))
    if bits != 16:
        nn.quantize(model, group_size=p.get("group", 64), bits=bits)  # what mlx_lm.convert -q does (embedding too)
    mx.eval(model.parameters())
    return model


def mlx_lm_generate(model: Any, p: Mapping[str, Any], bits: int, repeats: int = FIGURE_REPEATS, seed: int = 0) -> dict[str, Any]:
    """mlx-lm's generate_step, greedy (its default sampler is argmax), tokens read back as
    its generate loop does."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    rng = np.random.default_rng(seed)
    prompt = mx.array(rng.integers(0, p["vocab"], size=(p["prompt"],)).astype(np.int32))

    def run(n: int) -> list[int]:
        return [int(tok) for tok, _ in generate_step(prompt, model, max_tokens=n)]

    t0 = time.perf_counter()
    run(1 + p["new_tokens"])
    first_call = time.perf_counter() - t0
    prefix = measure.repeat(lambda: run(1), lambda out: None, repeats)
    full = measure.repeat(lambda: run(1 + p["new_tokens"]), lambda out: None, repeats)
    out = _figures(prefix, full, p["prompt"], p["new_tokens"], 1)
    weights = "bf16" if bits == 16 else f"q{bits} g{p.get('group', 64)} (nn.quantize)"
    out.update(
        implementation=f"mlx-lm {tool_version('mlx-lm')} generate_step + mlx {mx.__version__}, llama.Model {weights}",
        first_call_s=first_call,
        mode="eager",
    )
    return out


# -- rows for `bench run -w generate --reference` -----------------------------------------
REFERENCE_TIMING = "reference"
"""The `timing` of a reference row: a kind of its own, so summary.COMPARABLE never groups
it with a framework's latency or queued rows (and summary.not_ranked_reason says why)."""

TOOLS = {"transformers": "torch", "mlx-lm": "mlx"}  # tool -> the framework it runs on (the row's `framework`)
REFERENCES = {("torch", "eager"): "transformers", ("torch", "compiled"): "transformers", ("mlx", "eager"): "mlx-lm"}
"""(framework, mode) of a run's case -> the tool whose row sits beside it: transformers'
dynamic cache (eager) beside torch eager, its static cache (generate compiles the step)
beside torch compiled, mlx-lm (it does not compile its step) beside MLX eager. A tool's
rows share one serving process (serve), each with one model build and the case time-out."""


def refusal(tool: str, p: Mapping[str, Any], dtype: str, mode: str) -> dict[str, Any] | None:
    """The row of a reference that cannot run this case, known without importing the tool
    (so the runner writes it without starting a process), or None."""
    if tool == "transformers" and p["bits"] != 16:
        return {"status": "unsupported", "reason": "the transformers reference runs dense weights only (bits=16)"}
    if tool == "mlx-lm" and dtype != "bf16":
        return {"status": "unsupported", "reason": "the mlx-lm reference runs bf16 activations only"}
    if tool == "mlx-lm" and p["batch"] != 1:
        return {"status": "unsupported", "reason": "mlx-lm's generate_step decodes one sequence (batch 1)"}
    if tool == "mlx-lm" and mode != "eager":
        return {"status": "unsupported", "reason": "mlx-lm's generate does not compile its step: its row sits beside MLX eager"}
    return None


def tool_rows(tool: str, p: Mapping[str, Any], dtype: str, mode: str = "eager", repeats: int = FIGURE_REPEATS) -> list[dict[str, Any]]:
    """The worker-side part of one reference row for one generate case and mode: status,
    reason, implementation, mode, first_call_s, metrics, and median_s = the median time
    per decoded token (generate time / new_tokens) so the row reads in the same unit as a
    decode step. Runs in the tool's serving process (python -m bench.reference --serve TOOL)."""
    if tool not in TOOLS:
        raise ValueError(f"unknown reference tool {tool!r} (choose from: {', '.join(TOOLS)})")
    if (refused := refusal(tool, p, dtype, mode)) is not None:
        return [refused]
    if tool == "transformers":
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            return [{"status": "skipped", "reason": f"transformers reference needs: pip install 'metalbench[reference]' ({exc})"}]
        from bench.frameworks.torch.adapter import TorchAdapter

        adapter = TorchAdapter(device="auto")  # the suite's own device choice: mps, else cuda, else cpu
        run = hf_generate(hf_model(p, adapter.device.type, dtype), p, "static" if mode == "compiled" else "dynamic", repeats)
    else:
        try:
            import mlx_lm  # noqa: F401
        except ImportError as exc:
            return [{"status": "skipped", "reason": f"mlx-lm reference needs: pip install 'metalbench[reference]' ({exc})"}]
        from bench.frameworks.mlx.adapter import MLXAdapter

        adapter = MLXAdapter(device="auto")
        run = mlx_lm_generate(mlx_lm_model(p, p["bits"]), p, p["bits"], repeats)
    metrics = {k: v for k, v in run.items() if k not in ("implementation", "first_call_s", "mode")}
    later = run.get("graphs_compiled_later") or 0
    reason = f"torch.compile compiled {later} more graph(s) after the first call: the timed runs may hold compiles" if later else ""
    return [{
        "status": "ok", "reason": reason, "implementation": run["implementation"], "mode": run["mode"], "first_call_s": run["first_call_s"],
        "timing": REFERENCE_TIMING, "median_s": run["generate_s"] / p["new_tokens"], "metrics": metrics,
        "backend": adapter.backend, "device_name": adapter.device_name(), "versions": {tool: tool_version(tool), **adapter.versions()},
    }]  # fmt: skip


def _rows_or_error(tool: str, params: Mapping[str, Any], dtype: str, mode: str) -> list[dict[str, Any]]:
    """tool_rows, or the one error row of a tool that failed (its traceback to the log)."""
    import traceback

    try:
        return tool_rows(tool, params, dtype, mode)
    except Exception as exc:  # a tool that fails costs its row, not the run
        traceback.print_exc()
        return [{"status": "error", "reason": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:400]}]


def _forget_compiles() -> None:
    """Before a case in a serving process: dynamo's state from the previous case forgotten,
    so a static cache's compile sees this case's shapes as a fresh process would (a second
    shape of the same compiled forward is otherwise compiled with dynamic shapes); the
    on-disk inductor and Triton caches still serve what they hold."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "compiler"):
        torch.compiler.reset()


def serve(tool: str) -> int:
    """python -m bench.reference --serve TOOL: one tool imported once for a run's rows. Each
    line on stdin is a case ({"params", "dtype", "mode"}; {"op": "exit"} ends); each answer is
    one line {"type": "rows", "rows": [...]} on a private copy of stdout (fd 1 points at the
    log, so nothing the tool prints can corrupt it). One process per reference row paid the
    tool's imports and start-up, ~18 s a row on the lent H200, again for every row."""
    import json
    import sys

    from bench.channel import open_channel

    channel = open_channel(heartbeat=False)
    for line in sys.stdin:
        job = json.loads(line)
        if job.get("op") == "exit":
            break
        _forget_compiles()
        channel.send({"type": "rows", "rows": _rows_or_error(tool, job["params"], job["dtype"], job.get("mode", "eager"))})
    return 0


def main(argv: list[str] | None = None) -> int:
    """python -m bench.reference --serve TOOL: the runner starts one per tool (serve)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--serve" or args[1] not in TOOLS:
        print(f"usage: python -m bench.reference --serve TOOL (TOOL: {', '.join(TOOLS)}; bench run --reference starts it)", file=sys.stderr)
        return 2
    return serve(args[1])


if __name__ == "__main__":
    raise SystemExit(main())
