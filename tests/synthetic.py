"""Synthetic results: realistic-looking rows for the report's tests and timing script.

Real runs cover one machine and whatever frameworks are installed; the report must also
be right for what real runs rarely give on one box: two machines, all four frameworks,
unsupported and failed cases, a precision mismatch, mixed timing kinds and loss curves.
Rows go through `bench.results.normalise_row` and `bench.roofline.plausibility`, as the
runner's do, so they have the schema and the datasheet peaks that real rows have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench.results import normalise_row, write_table_atomically
from bench.roofline import plausibility
from workloads.base import params_key

ITEMSIZE = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class Machine:
    machine: str
    chip: str
    os: str
    backend: str
    device_name: str
    tflops: float  # the rate the fastest framework reaches at large sizes
    gbps: float
    cpu_count: int
    memory_bytes: int


MACHINES = (
    Machine("Apple M2 Max / Darwin arm64", "Apple M2 Max", "macOS 15.1 (arm64)", "metal", "Apple M2 Max",
            11.0, 380.0, 12, 64 * 2**30),
    Machine("AMD EPYC / Linux x86_64", "AMD EPYC 9654", "Linux 6.8 (x86_64)", "cpu", "AMD EPYC 9654",
            0.4, 40.0, 8, 32 * 2**30),
)
FRAMEWORKS = {"torch": (1.0, "2.6.0"), "tensorflow": (0.55, "2.19.1"), "jax": (0.8, "0.5.0"), "mlx": (0.95, "0.29.3")}
TRAINING = "train_mlp"


def _cases(scale: int) -> Iterator[tuple[str, dict[str, Any], float, tuple[str, ...]]]:
    """(workload, params, flops, dtypes); `scale` adds sizes so a run has more rows."""
    for n in (256 * 2**i for i in range(2 + scale)):
        yield "matmul", {"m": n, "n": n, "k": n}, 2.0 * n**3, ("fp32", "tf32", "fp16", "bf16")
    for seq in (256 * 2**i for i in range(1 + scale)):
        for causal in (False, True):
            p = {"batch": 1, "heads": 8, "seq": seq, "head_dim": 64, "causal": causal}
            full = 4.0 * 8 * seq * seq * 64
            yield "sdpa", p, full / 2 if causal else full, ("fp32", "fp16", "bf16")
    for n in (1 << (20 + 2 * i) for i in range(1 + scale)):
        yield "stream", {"n": n}, float(n), ("fp32", "fp16")
    yield TRAINING, {"hidden": 256, "steps": 50}, 6.0 * 256 * 256 * 64 * 50, ("fp32",)


def _bytes(workload: str, p: dict[str, Any], itemsize: int) -> float:
    if workload == "matmul":
        return float(itemsize * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"]))
    if workload == "sdpa":
        return float(4 * itemsize * p["batch"] * p["heads"] * p["seq"] * p["head_dim"])
    if workload == "stream":
        return float(2 * itemsize * p["n"])
    return float(itemsize * 256 * 256 * 4 * 50)


def _outcome(fw: str, m: Machine, workload: str, dtype: str) -> tuple[str, str]:
    if dtype == "tf32" and m.backend == "cpu":
        return "unsupported", "no reduced-precision (TF32-class) fp32 matmul mode exists on CPU"
    if dtype == "tf32":
        return "unsupported", "Apple M1-M4 GPUs have no reduced-precision fp32 matrix units"
    if fw == "mlx" and m.backend == "cpu" and workload == "sdpa" and dtype == "bf16":
        return "error", "RuntimeError: [scaled_dot_product_attention] bf16 is not supported on this stream"
    if fw == "tensorflow" and workload == TRAINING and m.backend == "metal":
        return "unsupported", "tensorflow-metal: training loop not implemented in this adapter"
    return "ok", ""


def _timing(rng: np.random.Generator, median: float, prefix: str, n: int = 20) -> dict[str, Any]:
    samples = median * (1 + rng.normal(0, 0.015, n)).clip(0.9, 1.2)
    half = 1.96 * samples.std() / np.sqrt(n)
    return {
        f"{prefix}median_s": float(np.median(samples)), f"{prefix}mean_s": float(samples.mean()),
        f"{prefix}stdev_s": float(samples.std()), f"{prefix}min_s": float(samples.min()),
        f"{prefix}ci_low_s": float(np.median(samples) - half), f"{prefix}ci_high_s": float(np.median(samples) + half),
        f"{prefix}n_samples": n, f"{prefix}inner_loops": 8, f"{prefix}samples_s": samples.tolist(),
        f"{prefix}converged": True,
    }


def _row(rng: np.random.Generator, run: int, when: datetime, m: Machine, fw: str, workload: str,
         params: dict[str, Any], flops: float, dtype: str) -> dict[str, Any]:
    speed, version = FRAMEWORKS[fw]
    status, reason = _outcome(fw, m, workload, dtype)
    itemsize = ITEMSIZE[dtype]
    bytes_moved = _bytes(workload, params, itemsize)
    row: dict[str, Any] = {
        "run_id": f"synthetic-{run:02d}-{m.backend}", "timestamp": when, "suite": "quick",
        "framework": fw, "framework_version": version, "versions": {fw: version},
        "device_requested": "auto", "backend": m.backend, "device_name": m.device_name,
        "workload": workload, "workload_hash": "0123456789ab", "params": params_key(params), "dtype": dtype,
        "status": status, "reason": reason, "host": f"host-{m.backend}", "os": m.os, "chip": m.chip,
        "machine": m.machine, "cpu_count": m.cpu_count, "memory_bytes": m.memory_bytes,
        "python_version": "3.11.7", "suite_version": "abc123def456", "flops": flops, "bytes_moved": bytes_moved,
        "cache_state": "warm", "threads": m.cpu_count,
    }
    if status != "ok":
        return row
    half_speed = 1.5 if itemsize == 2 and m.backend == "cpu" else 1.0  # Apple GPUs: fp16 at the fp32 rate
    rate = m.tflops * 1e12 * speed * half_speed * (1 - np.exp(-flops / 2e9))
    bandwidth = m.gbps * 1e9 * speed
    queued = max(flops / max(rate, 1.0), bytes_moved / bandwidth) * rng.uniform(0.95, 1.05) + 2e-6
    overhead = rng.uniform(5e-6, 60e-6) * (2.0 if fw == "tensorflow" else 1.0)
    timing = "latency" if (fw == "jax" and workload == "stream" and m.backend == "cpu") else "queued"
    latency = _timing(rng, queued + overhead, "latency_")
    queued_t = _timing(rng, queued, "queued_")
    chosen = queued_t if timing == "queued" else latency
    prefix = "queued_" if timing == "queued" else "latency_"
    median = chosen[f"{prefix}median_s"]
    mismatch = fw == "tensorflow" and workload == "sdpa" and dtype == "fp16" and m.backend == "cpu"
    row.update(latency)
    row.update(queued_t if timing == "queued" else {})
    row.update({k[len(prefix):]: v for k, v in chosen.items()})
    row.update({
        "timing": timing, "implementation": f"{fw}.{workload}", "math_mode": "strict",
        "dispatch_overhead_s": overhead if timing == "queued" else None,
        "first_call_s": median * 30 + 0.05, "tflops": flops / median / 1e12, "gbps": bytes_moved / median / 1e9,
        "peak_device_bytes": int(bytes_moved * rng.uniform(1.5, 3.0)) if fw in ("mlx", "torch") and m.backend == "metal" else None,
        "peak_device_note": "" if m.backend == "metal" else "allocator keeps no statistics on CPU",
        "peak_rss_bytes": int(2.5e8 + bytes_moved * rng.uniform(1, 2) + (5e8 if fw == "tensorflow" else 0)),
        "rss_scope": "case", "max_rel_error": 1e-6 if itemsize == 4 else 4e-3, "rel_rms_error": 5e-7,
        "tolerance": 1e-4 if itemsize == 4 else 2e-2,
        "effective_precision": "bf16-class" if mismatch else f"{dtype}-class",
        "precision_matches": not mismatch, "correct": not mismatch, "case_wall_s": 1.5,
    })
    if workload == TRAINING:
        steps = np.arange(params["steps"])
        curve = 2.3 * np.exp(-steps / (15 + 5 * speed)) + 0.1 + rng.normal(0, 0.01, len(steps))
        row["metrics"] = {"loss_curve": [round(float(v), 5) for v in curve], "tokens_per_s": None}
    row.update(plausibility(row))
    return row


def synthetic_rows(n_rows: int | None = None, seed: int = 0, loss_curves: bool = True) -> list[dict[str, Any]]:
    """One run per machine; with `n_rows`, larger grids and repeated runs until exactly n rows."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    scale = 0 if n_rows is None else 3
    rows: list[dict[str, Any]] = []
    run = 0
    while True:
        for m in MACHINES:
            for fw in FRAMEWORKS:
                for workload, params, flops, dtypes in _cases(scale):
                    if workload == TRAINING and not loss_curves:
                        continue
                    for dtype in dtypes:
                        when = start + timedelta(hours=run, seconds=len(rows))
                        rows.append(normalise_row(_row(rng, run, when, m, fw, workload, params, flops, dtype)))
                        if n_rows is not None and len(rows) == n_rows:
                            return rows
        run += 1
        if n_rows is None:
            return rows


def write_synthetic(directory: Path, n_rows: int | None = None, **kwargs: Any) -> list[Path]:
    """Write synthetic rows as one parquet file per run (as real runs are); returns the paths."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in synthetic_rows(n_rows, **kwargs):
        by_run.setdefault(row["run_id"], []).append(row)
    paths = []
    Path(directory).mkdir(parents=True, exist_ok=True)
    for run_id, rows in by_run.items():
        path = Path(directory) / f"{run_id}.parquet"
        write_table_atomically(rows, path)
        paths.append(path)
    return paths
