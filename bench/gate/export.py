"""metalbench results in other tools' formats.

pytest-benchmark users compare saved runs with `pytest-benchmark compare A.json B.json`;
writing its JSON (one benchmark per case and timing kind, with the raw per-call samples
as `data`) lets them read metalbench results with the tool they already use.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from bench import safe_write
from bench.fmt import json_finite
from bench.summary import describe_params

PYTEST_BENCHMARK_VERSION = "5.1.0"  # the JSON layout written; read by pytest-benchmark ≥ 3.1


def _stats(samples: np.ndarray, loops: int) -> dict[str, Any]:
    """pytest-benchmark's `stats` block (Tukey fences, outlier counts) from per-call samples."""
    x = np.sort(samples)
    q1, q3 = (float(v) for v in np.percentile(x, [25, 75]))
    iqr = q3 - q1
    mean, std = float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0
    inside = x[(x >= q1 - 1.5 * iqr) & (x <= q3 + 1.5 * iqr)]
    return {
        "min": float(x[0]), "max": float(x[-1]), "mean": mean, "stddev": std, "rounds": int(x.size),
        "median": float(np.median(x)), "iqr": iqr, "q1": q1, "q3": q3,
        "iqr_outliers": int(x.size - inside.size),
        "stddev_outliers": int(np.sum((x < mean - std) | (x > mean + std))),
        "outliers": f"{int(np.sum((x < mean - std) | (x > mean + std)))};{int(x.size - inside.size)}",
        "ld15iqr": float(inside[0]) if inside.size else float(x[0]),
        "hd15iqr": float(inside[-1]) if inside.size else float(x[-1]),
        "ops": float(x.size / x.sum()), "total": float(x.sum()),
        "data": [float(v) for v in samples], "iterations": int(loops),
    }


def _benchmarks(row: pd.Series) -> list[dict[str, Any]]:
    out = []
    for kind in ("latency", "queued"):
        samples = row.get(f"{kind}_samples_s")
        if row["status"] != "ok" or samples is None or len(samples) == 0:
            continue
        samples = np.asarray(samples, dtype=float)
        samples = samples[np.isfinite(samples)]  # an inf/NaN sample is no time: JSON cannot hold it either
        if samples.size == 0:
            continue
        param = f"{row['framework']}-{row['backend']}-{row['dtype']}-{kind}"
        group = f"{row['workload']} {describe_params(row['params'])} {row['dtype']} {kind}"
        out.append({
            "group": group,
            "name": f"{row['workload']}[{describe_params(row['params'])}-{param}]",
            "fullname": f"metalbench::{row['workload']}[{row['params']}-{param}]",
            "params": {"framework": row["framework"], "backend": row["backend"], "dtype": row["dtype"],
                       "timing": kind, **json.loads(row["params"])},
            "param": param,
            "extra_info": {"effective_precision": row.get("effective_precision"), "correct": bool(row.get("correct")),
                           "workload_hash": row.get("workload_hash"), "run_id": row.get("run_id")},
            "options": {"timer": "perf_counter", "min_rounds": None, "max_time": None, "warmup": True},
            "stats": _stats(samples, int(row.get(f"{kind}_inner_loops") or 1)),
        })
    return out


def to_pytest_benchmark(df: pd.DataFrame) -> dict[str, Any]:
    first = df.iloc[0]
    return {
        "machine_info": {"node": first.get("host"), "processor": first.get("chip"), "machine": platform.machine(),
                         "python_version": first.get("python_version"), "system": first.get("os"),
                         "metalbench_machine": first.get("machine")},
        "commit_info": {"id": first.get("suite_version"), "dirty": str(first.get("suite_version", "")).endswith("-dirty")},
        "benchmarks": [b for _, row in df.iterrows() for b in _benchmarks(row)],
        "datetime": pd.Timestamp(first.get("timestamp") or datetime.now(timezone.utc)).isoformat(),
        "version": PYTEST_BENCHMARK_VERSION,
    }


def write_pytest_benchmark(df: pd.DataFrame, path: Path, inputs: Iterable[Path | str] = ()) -> int:
    """Writes strict JSON (no NaN/Infinity: jq and JavaScript reject them), never over one of
    `inputs` or a file bench did not write; returns how many benchmarks it holds."""
    doc = json_finite(to_pytest_benchmark(df))
    safe_write.write_text(path, json.dumps(doc, indent=2, default=str, allow_nan=False), inputs)
    return len(doc["benchmarks"])
