"""The direct side of `bench fidelity`: the same op written straight against each framework's
own API, timed with `timeit`, in a fresh process of its own.

Why a second measurement at all: the suite's figure passes through adapters, a worker, a
queue-depth sweep and adaptive sampling; a user who times `a @ b` in a loop on their machine
should get the same number. So this side shares no timing code with the suite (not
`bench.measure`, not the adapters): inputs come from the framework's own RNG in its own
memory, threads are the framework's defaults, and the figure is a deep queue of calls closed
by one barrier (the suite's `queued`). fp32 asks for full-precision matmul, as a user
comparing fp32 would. Nothing here imports the engine, so `python -m bench.direct` in a child
process loads only the framework under test.

    python -m bench.direct '{"framework": "torch", "device": "cpu", "repeat": 7,
                             "cases": [["matmul", {"m": 16, "n": 256, "k": 256}, "fp32"]]}'

prints one line `DIRECT <json>`: per case its per-call time (median over `repeat` deep-queue
batches), the queue depth, the first call's time and the case's wall time.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
import timeit
from typing import Any, Callable, Mapping, Sequence

DEEP_QUEUE = 1024  # calls per barrier, bounded by time and memory below
OUTPUTS_IN_FLIGHT = 2**30  # as the suite (bench.measure.Protocol.queued_bytes_bound)
WORKLOADS = ("matmul", "sdpa", "stream")  # the ops written here
DTYPES = ("fp32", "fp16", "bf16")
TAG = "DIRECT"

Call = Callable[[], Any]
Hook = Callable[[Any], None]


def _shapes(workload: str, p: Mapping[str, Any]) -> dict[str, tuple]:
    return {"matmul": {"a": (p.get("m"), p.get("k")), "b": (p.get("k"), p.get("n"))},
            "sdpa": {n: (p.get("batch"), p.get("heads"), p.get("seq"), p.get("head_dim")) for n in "qkv"},
            "stream": {"x": (p.get("n"),)}}[workload]


def _output_bytes(workload: str, shapes: Mapping[str, tuple], dtype: str) -> int:
    out = math.prod(shapes["a"][:1] + shapes["b"][1:]) if workload == "matmul" else math.prod(next(iter(shapes.values())))
    return out * (4 if dtype == "fp32" else 2)


def _torch(workload: str, p: Mapping[str, Any], dtype: str, device: str, shapes: dict) -> tuple[Call, Hook, Hook]:
    import torch
    import torch.nn.functional as F

    dev = {"cuda": "cuda", "metal": "mps", "cpu": "cpu"}[device]
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    t = {k: torch.randn(*s, device=dev, dtype=dt) for k, s in shapes.items()}
    sync = {"cuda": torch.cuda.synchronize, "metal": torch.mps.synchronize, "cpu": lambda: None}[device]
    calls = {"matmul": lambda: t["a"] @ t["b"], "stream": lambda: t["x"] * 2,
             "sdpa": lambda: F.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=p["causal"])}
    return calls[workload], (lambda out: None), (lambda out: sync())


def _jax(workload: str, p: Mapping[str, Any], dtype: str, device: str, shapes: dict) -> tuple[Call, Hook, Hook]:
    import jax
    import jax.numpy as jnp

    dt = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}[dtype]
    if dtype == "fp32":
        jax.config.update("jax_default_matmul_precision", "highest")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    done: Hook = lambda out: out.block_until_ready()  # noqa: E731
    if workload == "matmul":
        a, b = (jax.random.normal(kk, s, dt) for kk, s in zip(keys, shapes.values()))
        f = jax.jit(jnp.matmul)
        return (lambda: f(a, b)), (lambda out: None), done
    if workload == "stream":
        x, h = jax.random.normal(keys[0], shapes["x"], dt), jax.jit(lambda x: x * 2)
        return (lambda: h(x)), (lambda out: None), done
    impl = "cudnn" if device == "cuda" else None
    q, k, v = (jax.random.normal(kk, (p["batch"], p["seq"], p["heads"], p["head_dim"]), dt) for kk in keys)
    g = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=p["causal"], implementation=impl))
    return (lambda: g(q, k, v)), (lambda out: None), done


def _mlx(workload: str, p: Mapping[str, Any], dtype: str, device: str, shapes: dict) -> tuple[Call, Hook, Hook]:
    import mlx.core as mx

    dt = {"fp32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}[dtype]
    t = {k: mx.random.normal(s).astype(dt) for k, s in shapes.items()}
    mx.eval(list(t.values()))
    if workload == "sdpa":
        mask, scale = ("causal" if p["causal"] else None), p["head_dim"] ** -0.5
        return (lambda: mx.fast.scaled_dot_product_attention(t["q"], t["k"], t["v"], scale=scale, mask=mask)), mx.async_eval, mx.eval
    return ((lambda: t["a"] @ t["b"]) if workload == "matmul" else (lambda: t["x"] * 2)), mx.async_eval, mx.eval


def _tensorflow(workload: str, p: Mapping[str, Any], dtype: str, device: str, shapes: dict) -> tuple[Call, Hook, Hook]:
    import keras
    import tensorflow as tf

    dt = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}[dtype]
    done: Hook = lambda out: tf.test.experimental.sync_devices()  # noqa: E731
    if workload == "matmul":
        a, b = (tf.cast(tf.random.normal(s), dt) for s in shapes.values())
        f = tf.function(tf.linalg.matmul)
        return (lambda: f(a, b)), (lambda out: None), done
    if workload == "stream":
        x, h = tf.cast(tf.random.normal(shapes["x"]), dt), tf.function(lambda x: x * 2)
        return (lambda: h(x)), (lambda out: None), done
    q, k, v = (tf.cast(tf.random.normal((p["batch"], p["seq"], p["heads"], p["head_dim"])), dt) for _ in "qkv")
    g = tf.function(lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=p["causal"]))
    return (lambda: g(q, k, v)), (lambda out: None), done


BUILDERS = {"torch": _torch, "jax": _jax, "mlx": _mlx, "tensorflow": _tensorflow}


def direct_op(framework: str, workload: str, p: Mapping[str, Any], dtype: str, device: str) -> tuple[Call, Hook, Hook, int]:
    """(call, start, barrier, output bytes) for one op, written straight against the
    framework: `start(out)` begins the work where the framework is lazy (MLX), `barrier(out)`
    waits for it. ValueError for a framework or workload this module does not write."""
    if framework not in BUILDERS:
        raise ValueError(f"no direct side for framework {framework!r} (choose from: {', '.join(BUILDERS)})")
    if workload not in WORKLOADS:
        raise ValueError(f"no direct side for workload {workload!r} (choose from: {', '.join(WORKLOADS)})")
    shapes = _shapes(workload, p)
    call, start, barrier = BUILDERS[framework](workload, p, dtype, device, shapes)
    return call, start, barrier, _output_bytes(workload, shapes, dtype)


def deep_queue(call: Call, start: Hook, barrier: Hook, depth: int) -> Callable[[], None]:
    """One batch of `depth` calls issued back to back (each started, its predecessor
    released) and closed by one barrier. Written apart from `bench.measure`'s batch sampler
    on purpose: the direct side must share no timing code with the suite it checks."""
    def deep() -> None:
        out = None
        for _ in range(depth):
            out = None
            out = call()
            start(out)
        barrier(out)
    return deep


def queue_depth(one_call_s: float, out_bytes: int) -> int:
    """Deep enough to last ~50 ms, at most DEEP_QUEUE calls and OUTPUTS_IN_FLIGHT bytes of outputs."""
    return int(max(2, min(DEEP_QUEUE, OUTPUTS_IN_FLIGHT // max(out_bytes, 1), math.ceil(0.05 / max(one_call_s, 1e-9)))))


def measure_process(framework: str, device: str, cases: Sequence[Sequence[Any]], repeat: int,
                    warmup_s: float = 0.0) -> list[dict[str, Any]]:
    """This process's figure for each case: the median per-call time of `repeat` deep-queue
    batches after a first call, three warm-up calls, one deep batch and `warmup_s` more of them.
    A kernel that holds a GPU at its power cap reads faster in its first ~0.1 s than once the
    cap has pulled the clock down (8192³ bf16 matmul on the lent H200, 2026-12-04: 700 W, SM
    clock 1980 → 1245–1560 MHz), while the suite reads it after its warm-up and queue sweep."""
    rows = []
    for workload, p, dtype in cases:
        started = time.perf_counter()
        call, start, barrier, out_bytes = direct_op(framework, workload, p, dtype, device)
        first = time.perf_counter()
        barrier(call())
        first_call = time.perf_counter() - first
        for _ in range(3):
            barrier(call())
        one = min(timeit.repeat(lambda: barrier(call()), number=1, repeat=3))
        depth = queue_depth(one, out_bytes)
        deep = deep_queue(call, start, barrier, depth)
        deep()
        until = time.perf_counter() + warmup_s
        while time.perf_counter() < until:
            deep()
        per_call = [t / depth for t in timeit.repeat(deep, number=1, repeat=repeat)]
        rows.append({"workload": workload, "params": dict(p), "dtype": dtype, "queued": statistics.median(per_call),
                     "depth": depth, "first_call_s": first_call, "case_wall_s": time.perf_counter() - started})
    return rows


def run_child(cmd: list[str], env: Mapping[str, str], tag: str, timeout_s: float | None = None) -> Any:
    """Run a child process; its result is the JSON after `tag` on its last tagged stdout
    line, or (no such line: it failed) the last line of its stderr, as text."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(env), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"no answer in {timeout_s:g} s"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(tag + " ")]
    if not lines:
        return (proc.stderr.strip().splitlines() or [f"no output (exit code {proc.returncode})"])[-1]
    return json.loads(lines[-1][len(tag) + 1:])


def main(argv: Sequence[str] | None = None) -> int:
    job = json.loads((argv if argv is not None else sys.argv[1:])[0])
    rows = measure_process(job["framework"], job["device"], job["cases"], int(job["repeat"]), float(job.get("warmup_s", 0.0)))
    print(f"{TAG} " + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
