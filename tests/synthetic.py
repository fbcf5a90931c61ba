"""Synthetic results: realistic-looking rows for the report's tests and timing script.

Real runs cover one machine and whatever frameworks are installed; the report must also
be right for what real runs rarely give on one box: two machines, all four frameworks,
unsupported and failed cases, a precision mismatch, mixed timing kinds, eager and
compiled modes, device time, a queued (k, per-call) curve, self-check outcomes, LLM,
training and quantized-matmul metrics, loss curves — and hostile text in a reason.
Rows go through `bench.results.normalise_row` and `bench.roofline.plausibility`, as the
runner's do, so they have the schema and the datasheet peaks that real rows have.

Columns other parts of the suite add over time (`mode`, device time, the queued curve,
`barrier_check`/`placement_check`) are not in this branch's schema; with
`newer_columns=True` they are appended to the written files as extra columns, the way a
newer file reaches an older reader, and with False they are left out, as in old files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import pyarrow as pa
import pyarrow.parquet as pq

from bench.results import SCHEMA, normalise_row
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
TRAINING = "train_step"
LLM = "generate"
QMATMUL = "qmatmul"
COMPILED = {"torch", "jax"}  # frameworks that get a compiled row beside the eager one (LLM, training)
HOSTILE = "</script><script>alert('x')</script><!-- <img src=x onerror=alert(1)>"
NEWER_COLUMNS = ("mode", "device_median_s", "device_ci_low_s", "device_ci_high_s", "queued_curve",
                 "barrier_check", "placement_check")


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
    for bits in (4, 8):
        p = {"m": 1, "n": 4096, "k": 4096, "bits": bits, "group": 64, "scheme": "affine"}
        yield QMATMUL, p, 2.0 * 4096 * 4096, ("bf16",)
    for bits in (16, 4):
        p = {"layers": 24, "d_model": 896, "heads": 14, "kv_heads": 2, "ffn": 4864, "vocab": 151_936, "tied": True,
             "prompt": 512, "new_tokens": 128, "batch": 1, "bits": bits, "group": 64}
        yield LLM, p, 2.0 * 494e6, ("bf16",)
    p = {"layers": 4, "d_model": 256, "heads": 8, "seq": 128, "batch": 16, "steps": 50, "lr": 1e-3, "data": "builtin"}
    yield TRAINING, p, 6.0 * 3.3e6 * 16 * 128, ("bf16",)


def _bytes(workload: str, p: dict[str, Any], itemsize: int) -> float:
    if workload == "matmul":
        return float(itemsize * (p["m"] * p["k"] + p["k"] * p["n"] + p["m"] * p["n"]))
    if workload == "sdpa":
        return float(4 * itemsize * p["batch"] * p["heads"] * p["seq"] * p["head_dim"])
    if workload == "stream":
        return float(2 * itemsize * p["n"])
    if workload == QMATMUL:
        return p["n"] * p["k"] * p["bits"] / 8 + itemsize * p["k"]
    if workload == LLM:
        return 494e6 * (2 if p["bits"] == 16 else p["bits"] / 8)
    return float(itemsize * 3.3e6 * 4)


def _outcome(fw: str, m: Machine, workload: str, dtype: str) -> tuple[str, str]:
    if dtype == "tf32" and m.backend == "cpu":
        return "unsupported", "no reduced-precision (TF32-class) fp32 matmul mode exists on CPU"
    if dtype == "tf32":
        return "unsupported", "Apple M1-M4 GPUs have no reduced-precision fp32 matrix units"
    if fw == "mlx" and m.backend == "cpu" and workload == "sdpa" and dtype == "bf16":
        return "error", "RuntimeError: [scaled_dot_product_attention] bf16 is not supported on this stream " + HOSTILE
    if fw == "tensorflow" and workload in (LLM, QMATMUL):
        return "unsupported", "no group-wise int4/int8 matmul kernel in tensorflow"
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
         params: dict[str, Any], flops: float, dtype: str, mode: str = "eager") -> dict[str, Any]:
    speed, version = FRAMEWORKS[fw]
    if mode == "compiled":
        speed *= 1.3
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
        "cache_state": "warm", "threads": m.cpu_count, "mode": mode,
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
        "timing": timing, "implementation": f"{fw}.{workload}" + (" (compiled)" if mode == "compiled" else ""),
        "math_mode": "strict",
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
        row["metrics"] = {"loss_curve": [round(float(v), 5) for v in curve],
                          "tokens_per_s": params["batch"] * params["seq"] / median, "samples_per_s": params["batch"] / median}
    elif workload == QMATMUL:
        row["metrics"] = {"weight_gbps": bytes_moved / median / 1e9, "scheme": f"affine int{params['bits']} g64"}
    elif workload == LLM:
        row["effective_precision"], row["precision_matches"] = "not-classified", None
        row["metrics"] = {"decode_tokens_per_s": 1 / median, "tg_tokens_per_s": 0.8 / median, "tg_label": "tg128",
                          "pp_tokens_per_s": 512 / (median * 12), "pp_label": "pp512", "ttft_s": median * 12.5,
                          "model_bytes": bytes_moved, "peak_memory_bytes": bytes_moved * 1.1}
    if m.backend == "metal" and fw == "torch":  # torch.mps.Event: device time
        device = queued * 0.97
        row.update(device_median_s=device, device_ci_low_s=device * 0.99, device_ci_high_s=device * 1.01)
    if timing == "queued" and workload == "matmul" and params["m"] == 256:
        row["queued_curve"] = json.dumps([[k, queued * (1 + 4 / k)] for k in (1, 2, 4, 8, 16, 32, 64)])
    row["barrier_check"] = "ok"
    row["placement_check"] = "ok" if m.backend != "metal" or fw != "tensorflow" else "ok (soft placement off)"
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
                    modes = ("eager", "compiled") if workload in (TRAINING, LLM) and fw in COMPILED else ("eager",)
                    for dtype in dtypes:
                        for mode in modes:
                            when = start + timedelta(hours=run, seconds=len(rows))
                            rows.append(_normalise(_row(rng, run, when, m, fw, workload, params, flops, dtype, mode)))
                            if n_rows is not None and len(rows) == n_rows:
                                return rows
        run += 1
        if n_rows is None:
            return rows


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """The schema's columns via `normalise_row`, plus the newer columns kept aside."""
    newer = {k: row.pop(k) for k in NEWER_COLUMNS if k in row}
    out = normalise_row(row)
    out.update(newer)
    return out


def write_synthetic(directory: Path, n_rows: int | None = None, newer_columns: bool = True, **kwargs: Any) -> list[Path]:
    """Write synthetic rows as one parquet file per run (as real runs are); returns the paths."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in synthetic_rows(n_rows, **kwargs):
        if not newer_columns:  # a file from before these columns existed: none of them set
            row = {**row, **{name: None for name in NEWER_COLUMNS}}
        by_run.setdefault(row["run_id"], []).append(row)
    paths = []
    Path(directory).mkdir(parents=True, exist_ok=True)
    for run_id, rows in by_run.items():
        path = Path(directory) / f"{run_id}.parquet"
        table = pa.Table.from_pylist([{k: r.get(k) for k in SCHEMA.names} for r in rows], schema=SCHEMA)
        if newer_columns:
            for name in (n for n in NEWER_COLUMNS if n not in SCHEMA.names):  # those the schema lacks yet
                table = table.append_column(name, pa.array([r.get(name) for r in rows]))
        pq.write_table(table, path)
        paths.append(path)
    return paths


# -- several runs of a machine, and several processes per run -----------------------------------
PROCESS_SPREAD = 0.02  # a fresh process's speed state: ±2% around the case's speed (log SD)


def with_processes(rows: list[dict[str, Any]], processes: int, seed: int = 1) -> list[dict[str, Any]]:
    """Each row as `processes` fresh worker processes (the `process` column, 0-based), each in
    its own speed state: every timing of a process is its row's times × one factor."""
    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        for p in range(processes):
            factor = float(np.exp(rng.normal(0, PROCESS_SPREAD))) if p else 1.0
            out.append({**scaled(row, factor), "process": p})
    return out


TIME_COLUMNS = ("median_s", "mean_s", "stdev_s", "min_s", "ci_low_s", "ci_high_s", "first_call_s", "dispatch_overhead_s")


def scaled(row: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of `row` whose every timing (and figure derived from one) is × `factor`."""
    if row.get("status") != "ok" or factor == 1.0:
        return dict(row)
    out = dict(row)
    for prefix in ("", "latency_", "queued_", "device_"):
        for name in TIME_COLUMNS:
            if out.get(prefix + name) is not None:
                out[prefix + name] = out[prefix + name] * factor
        if out.get(prefix + "samples_s") is not None:
            out[prefix + "samples_s"] = [v * factor for v in out[prefix + "samples_s"]]
    for name in ("tflops", "gbps"):
        if out.get(name) is not None:
            out[name] = out[name] / factor
    if out.get("metrics"):
        metrics = json.loads(out["metrics"]) if isinstance(out["metrics"], str) else dict(out["metrics"])
        for key in ("decode_tokens_per_s", "tg_tokens_per_s", "pp_tokens_per_s", "tokens_per_s", "samples_per_s", "weight_gbps"):
            if key in metrics:
                metrics[key] = metrics[key] / factor
        if "ttft_s" in metrics:
            metrics["ttft_s"] = metrics["ttft_s"] * factor
        out["metrics"] = json.dumps(metrics, sort_keys=True)
    return out


def write_runs(directory: Path, copies: int, processes: int = 3, slowed: dict[int, tuple[float, Any]] | None = None,
               seed: int = 0) -> list[Path]:
    """One synthetic run per machine, written `copies` times under new run ids, each copy an
    hour later, every case measured by `processes` processes. `slowed` maps a copy's index to
    (factor, predicate(row) -> bool): that copy's rows the predicate picks are × factor slower.
    Copy 0 keeps the original run ids. Returns the files written (one per machine and copy)."""
    base = with_processes(synthetic_rows(seed=seed), processes)
    paths = []
    Path(directory).mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        factor, pick = (slowed or {}).get(copy, (1.0, lambda row: False))
        rows = []
        for row in base:
            new = scaled(row, factor) if pick(row) else dict(row)
            new["run_id"] = row["run_id"] if copy == 0 else f"{row['run_id']}-copy{copy}"
            new["timestamp"] = row["timestamp"] + timedelta(hours=copy)
            rows.append(new)
        for run_id in dict.fromkeys(r["run_id"] for r in rows):
            mine = [r for r in rows if r["run_id"] == run_id]
            path = Path(directory) / f"{run_id}.parquet"
            table = pa.Table.from_pylist([{k: r.get(k) for k in SCHEMA.names} for r in mine], schema=SCHEMA)
            for name in [n for n in (*NEWER_COLUMNS, "process") if n not in SCHEMA.names]:
                table = table.append_column(name, pa.array([r.get(name) for r in mine]))
            pq.write_table(table, path)
            paths.append(path)
    return paths
