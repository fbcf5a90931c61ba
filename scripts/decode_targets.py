"""The decode targets of issue 15, measured side by side in one run on one machine.

Qwen2.5-0.5B's shape (workloads.generate.qwen25_05b: 24 layers, hidden 896, 14/2 heads,
vocabulary 151,936, tied), random weights, bf16, batch 1, prompt 512, 128 greedy tokens.
Each framework runs in a process of its own (as the suite's workers do), in this order:

  torch  metalbench's torch generate, eager and compiled (static cache + torch.compile;
         on CUDA mode="reduce-overhead"), with a profile of one decode step each
         (kernels launched, host time to issue the step, time with the sync)
  hf     transformers' generate, dynamic cache (eager) and static cache (its generate
         compiles the decode step), on LlamaForCausalLM of the same shape (bench.reference),
         with the kernels per token of the dynamic cache's decode
  jax    metalbench's JAX generate, eager (skipped at a large shape with its measured
         estimate, as the suite's worker does) and compiled (jax.jit)
  mlx    metalbench's MLX generate, eager and compiled, and mlx-lm's generate_step, at
         bf16, q8 g64 and q4 g64

  sweep-torch, sweep-jax, sweep-mlx   decode tokens/s at batch 1, 4, 16 and 32, each
         framework at its best mode (BEST_MODE), with the KV cache each batch needs

then prints one table (tg = decode tokens/s after the first token; pp = prompt tokens/s;
TTFT) and the targets' verdicts:

  torch compiled tg >= 0.9 x transformers static      torch eager tg >= 0.9 x transformers dynamic
  MLX tg >= mlx-lm tg at bf16, q8 and q4               JAX tg >= the best bf16 tg of all of them

Usage (from the repository root):
  python scripts/decode_targets.py [--shape qwen|tiny] [--repeats 3] [--only torch,hf,jax,mlx,sweep-torch,...] [--out DIR]
A group whose framework is missing prints why and the others still run. Each child prints
`RESULT <json>` lines; the parent collects them into DIR/decode_targets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.argtypes import positive_ints  # noqa: E402
from workloads.generate import qwen25_05b, tiny  # noqa: E402

GROUPS = ("torch", "hf", "jax", "mlx", "sweep-torch", "sweep-jax", "sweep-mlx")
SHAPES: dict[str, Callable[..., dict[str, Any]]] = {"qwen": qwen25_05b, "tiny": lambda bits=16: tiny(prompt=32, new_tokens=16, bits=bits)}


def emit(**row: Any) -> None:
    print("RESULT " + json.dumps(row, default=float), flush=True)


def params(shape: str, bits: int = 16, batch: int = 1) -> dict[str, Any]:
    return {**SHAPES[shape](bits=bits), "batch": batch}


# -- metalbench's own paths --------------------------------------------------------------
_WEIGHTS: dict[tuple[str, int], dict[str, np.ndarray]] = {}
def ours(framework: str, mode: str, bits: int, shape: str, repeats: int, profile: Callable[[Any, Any], dict] | None = None,
         batch: int = 1, group: str | None = None) -> None:
    """One framework's generate through its adapter, as the worker builds it (mode, full
    suite), its figures from generation.py's metrics, plus the timed decode step."""
    import importlib

    import bench.frameworks.generation as generation
    from bench.frameworks.base import Skipped, Unsupported
    from bench import measure
    from bench.catalog import FRAMEWORKS
    from bench.precision import stored_inputs
    from bench.worker import case_seed
    from workloads import WORKLOADS

    generation.PREFILL_REPEATS = generation.GENERATE_REPEATS = repeats
    label = f"{framework} {mode}" + ("" if bits == 16 else f" q{bits}") + ("" if batch == 1 else f" b{batch}")
    group = group or framework
    try:
        module, cls = FRAMEWORKS[framework].adapter.split(":")
        adapter = getattr(importlib.import_module(module), cls)(device="auto")
        adapter.set_math_mode("bf16")
        adapter.mode, adapter.suite = mode, "full"
        p = params(shape, bits, batch)
        adapter.check_case_budget("generate", p, "bf16")  # as the worker asks: JAX's eager skip
        workload = WORKLOADS["generate"]
        key = (shape, bits)
        if key not in _WEIGHTS:  # one model per shape and width: a batch sweep redraws only the prompts
            _WEIGHTS.clear()
            rng = np.random.default_rng(case_seed("generate", p, "bf16"))
            _WEIGHTS[key] = stored_inputs(workload.make_inputs(p, rng), "bf16")
        inputs = dict(_WEIGHTS[key])
        inputs["prompt"] = np.random.default_rng(batch).integers(0, p["vocab"], size=(batch, p["prompt"] + 1), dtype=np.int64)
        t0 = time.perf_counter()
        prepared = adapter.prepare("generate", p, "bf16", inputs)
        build_s = time.perf_counter() - t0
        del inputs
        out, first_call = measure.time_first_call(prepared.call, adapter.barrier)
        prepared.checked(out)
        del out
        m = prepared.metrics()
        per_call = measure.warm_up(prepared.call, adapter.barrier, measure.Protocol())
        step = measure.time_latency(prepared.call, adapter.barrier, per_call, measure.Protocol(budget_s=1.0))
        row = dict(
            group=group, label=label, framework=framework, mode=mode, bits=bits, batch=batch, backend=adapter.backend,
            device=adapter.device_name(), versions=adapter.versions(), implementation=prepared.implementation,
            build_s=build_s, first_call_s=first_call, step_s=step.summary.median,
            cache_vs_recompute_max_rel=m["cache_vs_recompute_max_rel"],
            **{k: m[k] for k in ("pp_tokens_per_s", "ttft_s", "tg_tokens_per_s", "generate_samples_s", "generate_ci_s", "prefill_samples_s",
                                 "kv_cache_bytes", "peak_memory_bytes")},
        )  # fmt: skip
        if profile is not None:
            try:
                row["profile"] = profile(prepared, adapter)
            except Exception as exc:  # a profiler that fails costs the profile, not the figures
                row["profile"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        emit(**row)
        del prepared
    except (Skipped, Unsupported) as exc:  # a measured, reasoned refusal: the row says why
        emit(group=group, label=label, framework=framework, mode=mode, bits=bits, batch=batch, error=f"{type(exc).__name__.lower()}: {exc}"[:600])
    except Exception as exc:
        traceback.print_exc()
        emit(group=group, label=label, framework=framework, mode=mode, bits=bits, batch=batch, error=f"{type(exc).__name__}: {exc}"[:400])


def torch_step_profile(prepared: Any, adapter: Any, n: int = 20) -> dict[str, Any]:
    """Kernels and launches per decode step (torch.profiler over n steps) and the host's
    share: the time to issue n steps without waiting against the time with the sync."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sync = adapter.barrier
    for _ in range(3):
        sync(prepared.call())
    sync(None)
    t0 = time.perf_counter()
    for _ in range(n):
        prepared.call()
    issued = time.perf_counter() - t0
    sync(None)
    total = time.perf_counter() - t0
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if adapter.backend == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(n):
            prepared.call()
        sync(None)
    events = prof.key_averages()
    device_kernels = sum(e.count for e in events if str(getattr(e, "device_type", "")).endswith("CUDA"))
    launches = {name: sum(e.count for e in events if e.key == name) for name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch", "cudaLaunchKernelExC")}
    cpu_ops = sum(e.count for e in events if e.key.startswith("aten::"))
    return {
        "steps": n, "host_issue_ms_per_step": issued / n * 1e3, "wall_ms_per_step": total / n * 1e3,
        "device_kernels_per_step": device_kernels / n, "aten_ops_per_step": cpu_ops / n,
        "launch_calls_per_step": {k: v / n for k, v in launches.items() if v},
        "torch": torch.__version__,
    }  # fmt: skip


def group_torch(shape: str, repeats: int) -> None:
    for mode in ("eager", "compiled"):
        ours("torch", mode, 16, shape, repeats, profile=torch_step_profile)


def group_jax(shape: str, repeats: int) -> None:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    for mode in ("eager", "compiled"):  # eager: skipped at a large shape, with the measured estimate
        ours("jax", mode, 16, shape, repeats)


def group_mlx(shape: str, repeats: int) -> None:
    from bench import reference

    for bits in (16, 8, 4):
        for mode in ("eager", "compiled"):
            ours("mlx", mode, bits, shape, repeats)
        label = "mlx-lm" + ("" if bits == 16 else f" q{bits}")
        try:
            model = reference.mlx_lm_model(params(shape, bits), bits)
            emit(group="mlx", label=label, framework="mlx-lm", bits=bits, **reference.mlx_lm_generate(model, params(shape, bits), bits, repeats))
            del model
        except Exception as exc:
            traceback.print_exc()
            emit(group="mlx", label=label, framework="mlx-lm", bits=bits, error=f"{type(exc).__name__}: {exc}"[:400])


def group_hf(shape: str, repeats: int) -> None:
    import torch

    from bench import reference

    device = "cuda" if torch.cuda.is_available() else "cpu"
    p = params(shape)
    model = reference.hf_model(p, device)
    for cache in ("dynamic", "static"):
        label = f"transformers {cache}"
        try:
            row = reference.hf_generate(model, p, cache, repeats)
            if cache == "dynamic":
                row["profile"] = _hf_profile(model, p, device)
            emit(group="hf", label=label, framework="transformers", bits=16, **row)
        except Exception as exc:
            traceback.print_exc()
            emit(group="hf", label=label, framework="transformers", bits=16, error=f"{type(exc).__name__}: {exc}"[:400])


def _hf_profile(model: Any, p: dict[str, Any], device: str, steps: int = 16) -> dict[str, Any]:
    """Kernels per decode token of transformers' eager generate: (kernels of a run of
    1 + steps tokens − kernels of a run of 1 token) / steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    prompt = torch.zeros((1, p["prompt"]), dtype=torch.long, device=device)
    counts = []
    for n in (1, 1 + steps):
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=acts) as prof, torch.no_grad():
            model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        ev = prof.key_averages()
        counts.append((sum(e.count for e in ev if str(getattr(e, "device_type", "")).endswith("CUDA")), sum(e.count for e in ev if e.key.startswith("aten::"))))
    return {"device_kernels_per_step": (counts[1][0] - counts[0][0]) / steps, "aten_ops_per_step": (counts[1][1] - counts[0][1]) / steps}


SWEEP_BATCHES = (1, 4, 16, 32)
BEST_MODE = {"torch": "compiled", "jax": "compiled", "mlx": "eager"}  # each framework at its best on the H200 (docs/llm.md)


def group_sweep(framework: str) -> Callable[[str, int], None]:
    """Decode tokens/s at each batch of SWEEP_BATCHES (or --batches), the framework at its
    best mode, with the KV cache each batch needs (prompt + new tokens, at bf16)."""

    def run(shape: str, repeats: int) -> None:
        if framework == "jax":
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        given = os.environ.get("DECODE_TARGETS_BATCHES")  # --batches, as the parent read it
        batches = positive_ints(given) if given else SWEEP_BATCHES
        for b in batches:
            ours(framework, BEST_MODE[framework], 16, shape, repeats, batch=b, group=f"sweep-{framework}")

    return run


CHILDREN = {"torch": group_torch, "hf": group_hf, "jax": group_jax, "mlx": group_mlx, **{f"sweep-{fw}": group_sweep(fw) for fw in BEST_MODE}}


# -- the parent --------------------------------------------------------------------------
def run_group(group: str, shape: str, repeats: int, log: Path, timeout_s: float) -> list[dict[str, Any]]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", group, "--shape", shape, "--repeats", str(repeats)]
    from bench.catalog import FRAMEWORKS

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])), PYTHONUNBUFFERED="1")
    framework = group.removeprefix("sweep-")
    if framework in FRAMEWORKS:  # what the suite's worker for that framework starts with (MLX_ENABLE_TF32=0)
        env.update(FRAMEWORKS[framework].worker_env("bf16"))
    t0 = time.perf_counter()
    with open(log, "ab") as err:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, timeout=timeout_s)
            out, code = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out, code = exc.stdout or b"", "timeout"
    rows = [json.loads(line[7:]) for line in out.decode(errors="replace").splitlines() if line.startswith("RESULT ")]
    print(f"[{group}: {len(rows)} rows in {time.perf_counter() - t0:.0f}s, exit {code}]", file=sys.stderr, flush=True)
    if not rows:
        rows = [{"group": group, "label": group, "error": f"no result (exit {code}); see {log}"}]
    return rows


def fmt(v: Any, spec: str = ".0f") -> str:
    return "—" if v is None else format(v, spec)


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    tg = {r["label"]: r.get("tg_tokens_per_s") for r in rows if r.get("tg_tokens_per_s") and r.get("batch", 1) == 1}  # targets are at batch 1
    lines = []

    def check(name: str, got: str, want: str, factor: float = 1.0) -> None:
        a, b = tg.get(got), tg.get(want)
        if a is None or b is None:
            lines.append(f"{name}: not measured ({got}: {fmt(a)}, {want}: {fmt(b)})")
            return
        ok = a >= factor * b
        lines.append(f"{name}: {'MET' if ok else 'MISSED'} — {got} {a:.0f} vs {factor:g} × {want} {b:.0f} = {factor * b:.0f} tok/s (ratio {a / b:.2f})")

    check("torch compiled ≥ 0.9 × transformers static", "torch compiled", "transformers static", 0.9)
    check("torch eager ≥ 0.9 × transformers dynamic", "torch eager", "transformers dynamic", 0.9)
    for suffix in ("", " q8", " q4"):
        best_mlx = max(("mlx eager" + suffix, "mlx compiled" + suffix), key=lambda k: tg.get(k) or 0)
        check(f"MLX ≥ mlx-lm{suffix or ' bf16'} (MLX's best mode: {best_mlx.split()[1]})", best_mlx, "mlx-lm" + suffix)
    bf16 = {k: v for k, v in tg.items() if not k.endswith(("q8", "q4")) and not k.startswith("jax")}
    if bf16:
        best = max(bf16, key=bf16.get)
        check(f"JAX ≥ the best bf16 of the others ({best})", "jax compiled", best)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=tuple(SHAPES), default="qwen")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {', '.join(GROUPS)}")
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--group-timeout", type=float, default=400.0)
    ap.add_argument("--batches", type=positive_ints, default=SWEEP_BATCHES, metavar="B,...",
                    help="the sweep groups' batch sizes, comma-separated (default 1,4,16,32; the full generate suite has 1 and 4)")
    ap.add_argument("--child", choices=GROUPS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        CHILDREN[args.child](args.shape, args.repeats)
        return 0
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        print(f"decode_targets: unknown group(s) {', '.join(bad)} (choose from: {', '.join(GROUPS)})", file=sys.stderr)
        return 2
    os.environ["DECODE_TARGETS_BATCHES"] = ",".join(map(str, args.batches))  # the sweep children read it
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "decode_targets.log"
    rows = []
    for g in groups:
        rows += run_group(g, args.shape, args.repeats, log, args.group_timeout)
        (args.out / "decode_targets.json").write_text(json.dumps(rows, indent=1, default=float))
    p = params(args.shape)
    print(f"\nshape {args.shape}: L{p['layers']} d{p['d_model']} H{p['heads']}/{p['kv_heads']} V{p['vocab']}, bf16, batch 1, "
          f"prompt {p['prompt']}, {p['new_tokens']} greedy tokens; medians of {args.repeats}")  # fmt: skip
    print(f"{'what':<24} {'tg tok/s':>9} {'pp tok/s':>9} {'TTFT ms':>8} {'step ms':>8} {'1st call s':>10} {'KV MiB':>7} {'peak GiB':>8}  implementation / error")
    for r in rows:
        if "error" in r:
            print(f"{r['label']:<24} {'':>9} {'':>9} {'':>8} {'':>8} {'':>10}  ERROR {r['error']}")
            continue
        print(f"{r['label']:<24} {fmt(r.get('tg_tokens_per_s')):>9} {fmt(r.get('pp_tokens_per_s')):>9} {fmt(r.get('ttft_s', 0) * 1e3, '.1f'):>8} "
              f"{fmt(r['step_s'] * 1e3 if r.get('step_s') else None, '.2f'):>8} {fmt(r.get('first_call_s'), '.1f'):>10} "
              f"{fmt(r['kv_cache_bytes'] / 2**20 if r.get('kv_cache_bytes') else None, '.1f'):>7} "
              f"{fmt(r['peak_memory_bytes'] / 2**30 if r.get('peak_memory_bytes') else None, '.2f'):>8}  {r.get('implementation', '')[:90]}")  # fmt: skip
    profiles = [(r["label"], r["profile"]) for r in rows if r.get("profile")]
    if profiles:
        print("\nprofile of one decode step (per step):")
        for label, prof in profiles:
            print(f"  {label:<22} {json.dumps(prof, default=lambda v: round(v, 2) if isinstance(v, float) else str(v))}")
    print("\ntargets:")
    for line in verdicts(rows):
        print("  " + line)
    versions = {r["label"]: r.get("versions") for r in rows if r.get("versions")}
    print("\nversions: " + json.dumps(versions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
