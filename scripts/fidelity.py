"""Does the suite measure what a direct measurement of the same call measures?

Per framework and case, in interleaved rounds of fresh processes (suite, direct, then
direct, suite, ...; so drift and the machine's speed states hit both sides alike):

* suite side: the worker's own code path (`bench.worker.run_case` through the adapter:
  check, warm-up, latency, the queue-depth sweep and its plateau, device time).
* direct side: the call written against the framework's own API with its defaults
  (inputs from the framework's own RNG, in its own memory; default threads), timed with
  `timeit` around the call and its barrier (latency) and around a deep queue of calls
  closed by one barrier (queued); on torch CUDA also with CUDA events.

One fresh process is no reference on a VM whose processes land in speed states 10-40%
apart; the direct processes span a range, and the suite's figure must sit inside it.
Prints the load average before and after, since this machine is shared.

    .venv/bin/python scripts/fidelity.py                  # CPU, four frameworks, 5 rounds
    python scripts/fidelity.py --device cuda -f torch,jax,mlx --suite full --rounds 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalog import FRAMEWORKS  # noqa: E402

CASES = {
    "quick": [("matmul", {"m": 16, "n": 1024, "k": 1024}, "fp32"), ("matmul", {"m": 256, "n": 256, "k": 256}, "fp32"),
              ("sdpa", {"batch": 1, "heads": 4, "seq": 128, "head_dim": 64, "causal": False}, "fp32")],
    "full": [("matmul", {"m": 8192, "n": 8192, "k": 8192}, "bf16"),
             ("sdpa", {"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": False}, "bf16")],
}
DEEP_QUEUE = 1024  # calls per barrier on the direct side, bounded by time and memory below
OUTPUTS_IN_FLIGHT = 2**30  # as the suite (bench.measure.Protocol.queued_bytes_bound)


# -- the direct side: no adapter code -----------------------------------------------------
def direct_op(framework: str, workload: str, p: dict, dtype: str, device: str) -> tuple[Callable[[], Any], Callable[[Any], None], Callable[[Any], None], int]:
    """(call, start, barrier, output bytes), written straight against the framework with
    its defaults; fp32 asks for full-precision matmul, as a user comparing fp32 would."""
    shapes = {"matmul": {"a": (p.get("m"), p.get("k")), "b": (p.get("k"), p.get("n"))},
              "sdpa": {n: (p.get("batch"), p.get("heads"), p.get("seq"), p.get("head_dim")) for n in "qkv"},
              "stream": {"x": (p.get("n"),)}}[workload]
    out_elems = math.prod(shapes["a"][:1] + shapes["b"][1:]) if workload == "matmul" else math.prod(next(iter(shapes.values())))
    out_bytes = out_elems * (4 if dtype == "fp32" else 2)
    no_start: Callable[[Any], None] = lambda out: None  # noqa: E731
    if framework == "torch":
        import torch
        import torch.nn.functional as F

        dev = {"cuda": "cuda", "metal": "mps", "cpu": "cpu"}[device]
        dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        t = {k: torch.randn(*s, device=dev, dtype=dt) for k, s in shapes.items()}
        sync = {"cuda": torch.cuda.synchronize, "metal": torch.mps.synchronize, "cpu": lambda: None}[device]
        if workload == "matmul":
            return (lambda: t["a"] @ t["b"]), no_start, (lambda out: sync()), out_bytes
        if workload == "stream":
            return (lambda: t["x"] * 2), no_start, (lambda out: sync()), out_bytes
        return (lambda: F.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=p["causal"])), no_start, (lambda out: sync()), out_bytes
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        dt = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}[dtype]
        if dtype == "fp32":
            jax.config.update("jax_default_matmul_precision", "highest")
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        if workload == "matmul":
            a, b = (jax.random.normal(kk, s, dt) for kk, s in zip(keys, shapes.values()))
            f = jax.jit(jnp.matmul)
            return (lambda: f(a, b)), no_start, (lambda out: out.block_until_ready()), out_bytes
        if workload == "stream":
            x, h = jax.random.normal(keys[0], shapes["x"], dt), jax.jit(lambda x: x * 2)
            return (lambda: h(x)), no_start, (lambda out: out.block_until_ready()), out_bytes
        impl = "cudnn" if device == "cuda" else None
        q, k, v = (jax.random.normal(kk, (p["batch"], p["seq"], p["heads"], p["head_dim"]), dt) for kk in keys)
        g = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=p["causal"], implementation=impl))
        return (lambda: g(q, k, v)), no_start, (lambda out: out.block_until_ready()), out_bytes
    if framework == "mlx":
        import mlx.core as mx

        dt = {"fp32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}[dtype]
        t = {k: mx.random.normal(s).astype(dt) for k, s in shapes.items()}
        mx.eval(list(t.values()))
        if workload == "matmul":
            return (lambda: t["a"] @ t["b"]), mx.async_eval, mx.eval, out_bytes
        if workload == "stream":
            return (lambda: t["x"] * 2), mx.async_eval, mx.eval, out_bytes
        mask, scale = ("causal" if p["causal"] else None), p["head_dim"] ** -0.5
        return (lambda: mx.fast.scaled_dot_product_attention(t["q"], t["k"], t["v"], scale=scale, mask=mask)), mx.async_eval, mx.eval, out_bytes
    if framework == "tensorflow":
        import keras
        import tensorflow as tf

        dt = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}[dtype]
        sync = tf.test.experimental.sync_devices
        if workload == "matmul":
            a, b = (tf.cast(tf.random.normal(s), dt) for s in shapes.values())
            f = tf.function(tf.linalg.matmul)
            return (lambda: f(a, b)), no_start, (lambda out: sync()), out_bytes
        if workload == "stream":
            x, h = tf.cast(tf.random.normal(shapes["x"]), dt), tf.function(lambda x: x * 2)
            return (lambda: h(x)), no_start, (lambda out: sync()), out_bytes
        q, k, v = (tf.cast(tf.random.normal((p["batch"], p["seq"], p["heads"], p["head_dim"])), dt) for _ in "qkv")
        g = tf.function(lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=p["causal"]))
        return (lambda: g(q, k, v)), no_start, (lambda out: sync()), out_bytes
    raise ValueError(framework)


def time_direct(call: Callable[[], Any], start: Callable[[Any], None], barrier: Callable[[Any], None], out_bytes: int,
                repeat: int = 15) -> dict[str, float]:
    """timeit medians: call + barrier (latency), and a deep queue closed by one barrier (queued)."""
    for _ in range(3):
        barrier(call())
    one = min(timeit.repeat(lambda: barrier(call()), number=1, repeat=5))
    number = max(1, math.ceil(5e-3 / one))
    latency = statistics.median(timeit.repeat(lambda: barrier(call()), number=number, repeat=repeat)) / number
    depth = int(max(2, min(DEEP_QUEUE, OUTPUTS_IN_FLIGHT // max(out_bytes, 1), math.ceil(0.05 / one))))
    queued = statistics.median(timeit.repeat(deep_queue(call, start, barrier, depth), number=1, repeat=max(5, repeat // 2))) / depth
    return {"latency": latency, "queued": queued, "direct_depth": depth}


def deep_queue(call: Callable[[], Any], start: Callable[[Any], None], barrier: Callable[[Any], None], depth: int) -> Callable[[], None]:
    """One batch of `depth` calls issued back to back (each started, its predecessor
    released) and closed by one barrier: the direct side's deep queue. Written apart from
    `bench.measure`'s batch sampler on purpose: the direct side must share no timing code
    with the suite it checks."""
    def deep() -> None:
        out = None
        for _ in range(depth):
            out = None
            out = call()
            start(out)
        barrier(out)
    return deep


def run_child(cmd: list[str], env: dict[str, str], tag: str) -> Any:
    """Run a script's child process; its result is the JSON after `tag` on its last tagged
    stdout line, or (no such line) the last line of its stderr, as text."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(tag + " ")]
    if not lines:
        return (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(lines[-1][len(tag) + 1:])


def cuda_events(call: Callable[[], Any], repeat: int = 30) -> float:
    """torch's device timer around one call, after a sleep kernel that keeps the GPU busy
    while the host enqueues it (the kernel's own time, as the suite's device figure)."""
    import torch

    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeat):
        torch.cuda._sleep(200_000)
        s.record(); call(); e.record(); e.synchronize()  # noqa: E702
        times.append(s.elapsed_time(e) / 1e3)
    return statistics.median(times)


def child_direct(framework: str, device: str, suite: str) -> list[dict]:
    rows = []
    for workload, p, dtype in CASES[suite]:
        call, start, barrier, out_bytes = direct_op(framework, workload, p, dtype, device)
        row = {"case": case_label(workload, p, dtype), **time_direct(call, start, barrier, out_bytes)}
        if framework == "torch" and device == "cuda":
            row["device"] = cuda_events(call)
        rows.append(row)
    return rows


# -- the suite side: the worker's own code path --------------------------------------------
def child_suite(framework: str, device: str, suite: str, budget: float) -> list[dict]:
    from bench.plan import CaseMessage
    from bench.worker import run_case

    module, _, cls = FRAMEWORKS[framework].adapter.partition(":")
    adapter = getattr(__import__(module, fromlist=[cls]), cls)(device=device)
    rows = []
    for workload, p, dtype in CASES[suite]:
        r = run_case(adapter, CaseMessage.from_json({"workload": workload, "params": p, "dtype": dtype, "protocol": {"budget_s": budget}}))
        rows.append({"case": case_label(workload, p, dtype), "latency": r.get("latency_median_s"), "queued": r.get("queued_median_s"),
                     "depth": r.get("queue_depth"), "device": r.get("device_median_s"), "correct": r.get("correct")})
    return rows


def case_label(workload: str, p: dict, dtype: str) -> str:
    return f"{workload} {dtype} " + " ".join(f"{k}={v}" for k, v in p.items())


# -- the parent ---------------------------------------------------------------------------
def spawn(side: str, framework: str, args: argparse.Namespace) -> list[dict] | str:
    cmd = [sys.executable, __file__, f"--child-{side}", framework, "--device", args.device, "--suite", args.suite, "--budget", str(args.budget)]
    env = {**os.environ, **(FRAMEWORKS[framework].worker_env("fp32") if side == "suite" else {})}
    return run_child(cmd, env, "FIDELITY")


def summarise(framework: str, suite_runs: list[list[dict]], direct_runs: list[list[dict]]) -> list[dict]:
    out = []
    for i, s0 in enumerate(suite_runs[0]):
        row: dict[str, Any] = {"framework": framework, "case": s0["case"], "correct": all(r[i]["correct"] for r in suite_runs)}
        for kind in ("latency", "queued", "device"):
            suite = [r[i][kind] for r in suite_runs if r[i].get(kind) is not None]
            direct = [r[i][kind] for r in direct_runs if r[i].get(kind) is not None]
            if not suite or not direct:
                continue
            sm = statistics.median(suite)
            row[kind] = {"suite": suite, "direct": direct, "suite_median": sm, "direct_min": min(direct), "direct_max": max(direct),
                         "inside": min(direct) <= sm <= max(direct), "ratio": sm / statistics.median(direct)}
        row["suite_depths"] = [r[i]["depth"] for r in suite_runs]
        row["direct_depth"] = direct_runs[0][i]["direct_depth"]
        out.append(row)
    return out


def us(x: float) -> str:
    return f"{x * 1e6:.4g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--frameworks", default="torch,tensorflow,jax,mlx")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--suite", default="quick", choices=sorted(CASES))
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes per side and framework")
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--child-suite", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-direct", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.child_suite:
        print("FIDELITY " + json.dumps(child_suite(args.child_suite, args.device, args.suite, args.budget)), flush=True)
        return 0
    if args.child_direct:
        print("FIDELITY " + json.dumps(child_direct(args.child_direct, args.device, args.suite)), flush=True)
        return 0
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for fw in args.frameworks.split(","):
        runs: dict[str, list[list[dict]]] = {"suite": [], "direct": []}
        for rnd in range(args.rounds):
            for side in (("suite", "direct") if rnd % 2 == 0 else ("direct", "suite")):
                got = spawn(side, fw, args)
                if isinstance(got, str):
                    print(f"{fw} {side}: failed: {got}")
                    continue
                runs[side].append(got)
        if runs["suite"] and runs["direct"]:
            rows.extend(summarise(fw, runs["suite"], runs["direct"]))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'framework':<11}{'case':<58}{'kind':<8}{'suite µs':>10}{'direct range µs':>22}{'inside':>8}{'suite/direct':>14}{'k suite/direct':>16}")
    inside = total = 0
    for r in rows:
        for kind in ("latency", "queued", "device"):
            if kind not in r:
                continue
            c = r[kind]
            total += 1
            inside += c["inside"]
            depth = f"{'/'.join(map(str, r['suite_depths']))} / {r['direct_depth']}" if kind == "queued" else ""
            print(f"{r['framework']:<11}{r['case'][:57]:<58}{kind:<8}{us(c['suite_median']):>10}"
                  f"{us(c['direct_min']) + '–' + us(c['direct_max']):>22}{'yes' if c['inside'] else 'NO':>8}{c['ratio']:>14.3f}{depth:>16}")
    print(f"{inside}/{total} suite figures inside the range of {args.rounds} fresh direct processes")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
