"""The machine key is made in one place, and a CUDA row's key names the baseline file the
committed H100 baseline is stored under."""

from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd
import pytest

from bench.gate.baseline import baseline_path
from bench.machine import REPO_ROOT, cpu_name, host_key, machine_info, machine_key, stored_machine_key
from bench.plan import Case
from bench.results import complete_row, read_results

XEON = "Intel(R) Xeon(R) Processor"
H100 = "NVIDIA H100 80GB HBM3"
HOST = {"host": "vm", "os": "Linux 5.15.0 (x86_64)", "chip": XEON, "cpu_count": 16, "memory_bytes": 1, "python_version": "3.12",
        "suite_version": "test", "machine": machine_key(host_key(XEON, "Linux", "x86_64"), None, None)}  # fmt: skip
BASELINES = sorted((REPO_ROOT / "results" / "baselines").glob("*.parquet"))


def _row(hello: dict, measured: dict | None = None) -> dict:
    case = Case("torch", "matmul", {"m": 8, "n": 8, "k": 8}, "bf16")
    return complete_row(case, measured or {"status": "ok"}, run_id="r", suite="quick", device_requested="auto", machine=HOST, hello=hello)


def test_a_cuda_row_is_keyed_by_its_gpu_and_finds_the_committed_baseline():
    row = _row({"backend": "cuda", "device_name": H100, "versions": {"torch": "2.9"}})
    assert row["machine"] == f"{H100} · {XEON} / Linux x86_64"
    path = baseline_path(row["machine"])
    assert path.name == "nvidia-h100-80gb-hbm3-intel-r-xeon-r-processor-linux-x86-64-9fcdf9d9.parquet"
    assert (REPO_ROOT / path).exists()
    assert not (REPO_ROOT / baseline_path(HOST["machine"])).exists()  # the host's key (what the gate used to look for)


def test_cpu_rows_and_rows_without_a_backend_are_keyed_by_the_host():
    assert _row({"backend": "cpu", "device_name": XEON})["machine"] == HOST["machine"]
    assert _row({}, {"status": "skipped", "reason": "not installed"})["machine"] == HOST["machine"]
    assert _row({"backend": "metal", "device_name": "Apple M3 Max"})["machine"] == HOST["machine"]


def test_this_host_key_round_trips_through_its_stored_columns():
    info = machine_info()
    assert info["machine"] == host_key(cpu_name(), platform.system(), platform.machine(), info["gpu_cores"])
    assert stored_machine_key(str(info["chip"]), str(info["os"]), None, None, info["gpu_cores"]) == info["machine"]
    assert stored_machine_key("Apple M3 Max", "macOS 15.1 (arm64)", "metal", "Apple M3 Max") == "Apple M3 Max / Darwin arm64"


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: Path(p).name)
def test_every_committed_baseline_row_has_the_key_the_runner_would_give_it(path):
    df = read_results(path)
    text = lambda v: v if isinstance(v, str) else None  # noqa: E731  (null columns read as NaN/None)
    wrong = [(r["framework"], r["status"], r["backend"]) for _, r in df.iterrows()
             if r["machine"] != stored_machine_key(r["chip"], r["os"], text(r["backend"]), text(r["device_name"]),
                                                   int(r["gpu_cores"]) if pd.notna(r["gpu_cores"]) else None)]  # fmt: skip
    assert not wrong, f"{len(wrong)} rows the runner cannot produce, e.g. {wrong[0]}"
    assert path.name == baseline_path(df["machine"].iloc[0]).name
