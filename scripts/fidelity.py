"""Does the suite measure what a direct measurement of the same call measures?

For a few cases per framework, in one process: the suite's protocol (bench.measure through
the adapter: warm-up, calibration, adaptive sampling) against an independent measurement
written with the framework's own API and `timeit` — the bare call plus that framework's
barrier (and on CUDA, torch's device events). Prints suite/direct ratios for latency and
queued; a ratio well below 1 means the suite forgot to wait, well above means overhead.

    .venv/bin/python scripts/fidelity.py                 # CPU, all four frameworks
    python scripts/fidelity.py --device cuda -f torch,jax,mlx --suite full
Each framework runs in a child process of its own (as in the suite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import measure  # noqa: E402
from bench.catalog import FRAMEWORKS  # noqa: E402
from bench.precision import to_storage  # noqa: E402
from bench.plan import case_seed  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

CASES = {
    "quick": [("matmul", {"m": 256, "n": 256, "k": 256}, "fp32"), ("matmul", {"m": 16, "n": 1024, "k": 1024}, "bf16"),
              ("sdpa", {"batch": 1, "heads": 4, "seq": 128, "head_dim": 64, "causal": False}, "fp32")],
    "full": [("matmul", {"m": 8192, "n": 8192, "k": 8192}, "bf16"),
             ("sdpa", {"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": False}, "bf16"),
             ("qmatmul", {"m": 16, "n": 8192, "k": 8192, "bits": 4, "scheme": "affine", "group": 64}, "bf16")],
}


def direct_barrier(framework: str, device: str) -> Callable[[Any], None]:
    """Each framework's completion barrier, written out here rather than taken from the adapter."""
    if framework == "torch":
        import torch

        sync = {"cuda": torch.cuda.synchronize, "metal": torch.mps.synchronize}.get(device, lambda: None)
        return lambda out: sync()
    if framework == "jax":
        return lambda out: out.block_until_ready()
    if framework == "mlx":
        import mlx.core as mx

        return mx.eval
    import tensorflow as tf

    return lambda out: tf.test.experimental.sync_devices()


def direct_op(framework: str, workload: str, p: dict, dtype: str, x: dict[str, np.ndarray], device: str, prepared: Any):
    """(call, barrier) written straight against the framework — no adapter code — except for
    quantized matmul, whose packing is the adapter's; there the same call is timed independently."""
    if workload == "qmatmul":
        return prepared.call, direct_barrier(framework, device)
    if framework == "torch":
        import torch
        import torch.nn.functional as F

        dev = {"cuda": "cuda", "metal": "mps", "cpu": "cpu"}[device]
        dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        t = {k: torch.from_numpy(v).to(dev, dt) for k, v in x.items()}
        sync = {"cuda": torch.cuda.synchronize, "metal": torch.mps.synchronize, "cpu": lambda: None}[device]
        if workload == "matmul":
            return (lambda: torch.matmul(t["a"], t["b"])), (lambda out: sync())
        return (lambda: F.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=p["causal"])), (lambda out: sync())
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        dt = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}[dtype]
        jax.config.update("jax_default_matmul_precision", "highest" if dtype == "fp32" else None)
        if workload == "matmul":
            f = jax.jit(jnp.matmul)
            a, b = jnp.asarray(x["a"], dt), jnp.asarray(x["b"], dt)
            return (lambda: f(a, b)), (lambda out: out.block_until_ready())
        impl = "cudnn" if device == "cuda" else None
        q, k, v = (jnp.asarray(np.swapaxes(x[n], 1, 2), dt) for n in "qkv")
        f = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=p["causal"], implementation=impl))
        return (lambda: f(q, k, v)), (lambda out: out.block_until_ready())
    if framework == "mlx":
        import mlx.core as mx

        dt = {"fp32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}[dtype]
        t = {k: mx.array(v).astype(dt) for k, v in x.items()}
        mx.eval(list(t.values()))
        if workload == "matmul":
            return (lambda: t["a"] @ t["b"]), mx.eval
        mask = "causal" if p["causal"] else None
        scale = p["head_dim"] ** -0.5
        return (lambda: mx.fast.scaled_dot_product_attention(t["q"], t["k"], t["v"], scale=scale, mask=mask)), mx.eval
    if framework == "tensorflow":
        import keras
        import tensorflow as tf

        dt = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}[dtype]
        tf.config.experimental.enable_tensor_float_32_execution(False)
        t = {k: tf.cast(tf.constant(v), dt) for k, v in x.items()}
        sync = tf.test.experimental.sync_devices
        if workload == "matmul":
            f = tf.function(tf.linalg.matmul, jit_compile=False)
            return (lambda: f(t["a"], t["b"])), (lambda out: sync())
        q, k, v = (tf.cast(tf.constant(np.swapaxes(x[n], 1, 2)), dt) for n in "qkv")
        f = tf.function(lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=p["causal"]), jit_compile=False)
        return (lambda: f(q, k, v)), (lambda out: sync())
    raise ValueError(framework)


def direct_start(framework: str) -> Callable[[Any], None]:
    if framework == "mlx":
        import mlx.core as mx

        return mx.async_eval
    return lambda out: None


def timeit_direct(call: Callable[[], Any], barrier: Callable[[Any], None], loops: int, repeat: int, queued: bool,
                  start: Callable[[Any], None] = lambda out: None) -> float:
    """`start` launches work a lazy framework would otherwise skip (MLX: mx.async_eval)."""
    if queued:
        def body() -> None:
            out = None
            for _ in range(loops):
                out = call()
                start(out)
            barrier(out)
        return statistics.median(timeit.repeat(body, number=1, repeat=repeat)) / loops
    return statistics.median(timeit.repeat(lambda: barrier(call()), number=loops, repeat=repeat)) / loops


def cuda_events_direct(call: Callable[[], Any], loops: int, repeat: int, queued: bool) -> float:
    """torch's own device timer: the reference for how fast the GPU really ran the call."""
    import torch

    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if queued:
            start.record()
            for _ in range(loops):
                call()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / loops)
        else:
            per = []
            for _ in range(loops):
                start.record(); call(); end.record(); end.synchronize()  # noqa: E702
                per.append(start.elapsed_time(end) / 1e3)
            times.append(statistics.median(per))
    return statistics.median(times)


def child(framework: str, device: str, suite: str, budget: float) -> list[dict]:
    os.environ.update(FRAMEWORKS[framework].worker_env("fp32"))
    module, _, cls = FRAMEWORKS[framework].adapter.partition(":")
    adapter = getattr(__import__(module, fromlist=[cls]), cls)(device=device)
    protocol = measure.Protocol(budget_s=budget, rel_precision=0.01)
    out = []
    for workload, p, dtype in CASES[suite]:
        w = WORKLOADS[workload]
        rng = np.random.default_rng(case_seed(workload, p, dtype))
        x = {k: to_storage(v, dtype) for k, v in w.make_inputs(p, rng).items()}
        adapter.set_math_mode(dtype)
        prep = adapter.prepare(workload, p, dtype, x)
        d_call, d_barrier = direct_op(framework, workload, p, dtype, {k: v.astype(np.float32) for k, v in x.items()},
                                      adapter.backend, prep)
        first, _ = measure.time_first_call(prep.call, adapter.barrier)
        out_bytes = adapter.to_numpy(first).size * 4
        per_call = measure.warm_up(prep.call, adapter.barrier, protocol)
        measure.warm_up(d_call, d_barrier, protocol)
        loops = measure.queue_depth(per_call, out_bytes, protocol)
        ratios: dict[str, list[float]] = {"latency": [], "queued": []}
        suite_t: dict[str, list[float]] = {"latency": [], "queued": []}
        direct_t: dict[str, list[float]] = {"latency": [], "queued": []}
        for _ in range(5):  # interleave so drift hits both the same
            lat = measure.time_latency(prep.call, adapter.barrier, per_call, protocol).summary.median
            que = measure.time_queued(prep.call, adapter.barrier, adapter.enqueue, per_call, out_bytes, protocol).summary.median
            for kind, suite_median in (("latency", lat), ("queued", que)):
                if framework == "torch" and adapter.backend == "cuda":
                    direct = cuda_events_direct(d_call, loops, 15, kind == "queued")
                else:
                    direct = timeit_direct(d_call, d_barrier, loops, 15, kind == "queued", direct_start(framework))
                suite_t[kind].append(suite_median)
                direct_t[kind].append(direct)
                ratios[kind].append(suite_median / direct)
        flops = w.flops(p)
        out.append({
            "framework": framework, "backend": adapter.backend, "case": f"{workload} {dtype} {json.dumps(p)}",
            "direct": "cuda events" if framework == "torch" and adapter.backend == "cuda" else "timeit + barrier",
            **{f"{k}_suite_s": statistics.median(v) for k, v in suite_t.items()},
            **{f"{k}_direct_s": statistics.median(v) for k, v in direct_t.items()},
            **{f"{k}_ratio": statistics.median(v) for k, v in ratios.items()},
            "queued_tflops": flops / statistics.median(suite_t["queued"]) / 1e12,
        })
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--frameworks", default="torch,tensorflow,jax,mlx")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--suite", default="quick", choices=sorted(CASES))
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.child:
        print("FIDELITY " + json.dumps(child(args.child, args.device, args.suite, args.budget)), flush=True)
        return 0
    rows = []
    for fw in args.frameworks.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", fw, "--device", args.device, "--suite", args.suite,
                               "--budget", str(args.budget)], capture_output=True, text=True, env={**os.environ, **FRAMEWORKS[fw].worker_env("fp32")})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FIDELITY ")]
        if not lines:
            print(f"{fw}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        rows.extend(json.loads(lines[-1][len("FIDELITY "):]))
    print(f"{'framework':<11}{'backend':<8}{'case':<75}{'direct':<17}{'latency suite/direct':>22}{'queued suite/direct':>21}{'TFLOP/s':>9}")
    for r in rows:
        print(f"{r['framework']:<11}{r['backend']:<8}{r['case']:<75}{r['direct']:<17}"
              f"{r['latency_ratio']:>22.3f}{r['queued_ratio']:>21.3f}{r['queued_tflops']:>9.3g}")
    inside = [r for r in rows if 0.95 <= r["latency_ratio"] <= 1.05 and 0.95 <= r["queued_ratio"] <= 1.05]
    print(f"{len(inside)}/{len(rows)} cases with both ratios within 0.95-1.05")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
