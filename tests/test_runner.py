"""The runner isolates frameworks in workers: crashes and hangs cost one case, not the run."""

from __future__ import annotations

import os

import pytest

from bench.catalog import FrameworkSpec
from bench.plan import Case
from bench.results import read_results

pytestmark = pytest.mark.integration  # every test here starts real worker processes

SMALL = {"m": 8, "n": 8, "k": 8}


def fake(params, dtype="fp32"):
    return Case("fake", "matmul", params, dtype)


def test_crashing_worker_is_recorded_and_run_continues(run_cases):
    rows, path = run_cases([fake(SMALL), fake({**SMALL, "behaviour": "crash"}), fake(SMALL)])
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert "exit code 3" in rows[1]["reason"]
    assert len(read_results(path)) == 3


def test_hanging_worker_times_out_and_run_continues(run_cases):
    rows, _ = run_cases([fake({**SMALL, "behaviour": "hang"}), fake(SMALL)], case_timeout_s=3)
    assert [r["status"] for r in rows] == ["timeout", "ok"]
    assert "no answer within 3s" in rows[0]["reason"]


def test_every_row_is_on_disk_as_soon_as_it_exists(run_cases, tmp_path):
    seen = []

    def check(case, row):
        seen.append(len(read_results(tmp_path / "results" / "run.parquet")))

    from bench.catalog import FRAMEWORKS
    from bench.results import ResultsWriter
    from bench.runner import Runner, RunConfig
    from tests.helpers import FAKE, QUICK_PROTOCOL

    writer = ResultsWriter(tmp_path / "results" / "run.parquet")
    Runner(RunConfig(protocol=QUICK_PROTOCOL), writer, "r", frameworks={**FRAMEWORKS, "fake": FAKE}, on_row=check).run(
        [fake(SMALL), fake(SMALL)]
    )
    assert seen == [1, 2]


def test_framework_not_installed_is_skipped_with_install_hint(run_cases):
    missing = FrameworkSpec("ghost", "no_such_module_xyz:Adapter", "no_such_module_xyz", "ghost")
    rows, _ = run_cases([Case("ghost", "matmul", SMALL, "fp32")] * 2, frameworks={"ghost": missing})
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "pip install 'metalbench[ghost]'" in rows[0]["reason"]


def test_unavailable_backend_is_an_error_not_a_fallback(run_cases):
    rows, _ = run_cases([fake(SMALL)], device="metal")
    assert rows[0]["status"] == "error"
    assert "backend 'metal' is not available here (available: cpu)" in rows[0]["reason"]
    assert rows[0]["backend"] is None


def test_ok_row_has_both_timings_and_a_correctness_verdict(run_cases):
    rows, _ = run_cases([fake(SMALL)])
    row = rows[0]
    assert row["status"] == "ok" and row["correct"] and row["effective_precision"] == "fp32-class"
    assert row["timing"] == "queued" and row["median_s"] == row["queued_median_s"]
    assert len(row["latency_samples_s"]) == row["latency_n_samples"] >= 5
    difference = row["latency_median_s"] - row["queued_median_s"]
    if difference >= 0:
        assert row["dispatch_overhead_s"] == difference
    else:  # noise reads 0, a real slowdown null; either way the note says which
        assert row["dispatch_overhead_s"] in (0.0, None) and row["dispatch_overhead_note"]
    assert row["queue_curve_k"][0] == 1 and row["queue_depth"] == row["queue_curve_k"][-1]
    assert len(row["queue_curve_s"]) == len(row["queue_curve_k"]) and row["queue_stop"]
    assert row.get("device_median_s") is None and "no separate device time" in row["device_time_note"]
    assert row["backend"] == "cpu" and row["framework_version"]
    assert row["cpus"] is None  # not bound (--cpus): the OS placed the worker



def test_the_rows_a_run_returns_are_the_rows_it_wrote(run_cases):
    import json

    import numpy as np

    from bench.results import COLUMNS

    rows, path = run_cases([fake(SMALL), fake({**SMALL, "behaviour": "crash"})])
    on_disk = read_results(path)
    assert [set(r) for r in rows] == [set(COLUMNS)] * 2  # one shape: the schema's
    assert json.loads(rows[0]["versions"]) == {"numpy": np.__version__}  # JSON text, as stored
    assert on_disk["status"].tolist() == [r["status"] for r in rows]
    assert on_disk["median_s"].iloc[0] == rows[0]["median_s"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU binding is Linux-only (sched_setaffinity)")
def test_a_worker_bound_with_cpus_runs_there_and_the_row_says_so(run_cases):
    """--cpus binds the worker before the framework starts its threads; the row's cpus is
    what the OS reports from inside the worker, and null when the run did not bind it."""
    cpu = max(os.sched_getaffinity(0))
    bound, _ = run_cases([fake(SMALL)], cpus=(cpu,))
    assert bound[0]["status"] == "ok" and bound[0]["cpus"] == str(cpu)


def test_cpus_outside_this_machine_are_refused_naming_the_valid_ones():
    import argparse

    from bench.argtypes import cpu_list

    if not hasattr(os, "sched_setaffinity"):
        with pytest.raises(argparse.ArgumentTypeError, match="Linux"):
            cpu_list("0")
        return
    top = max(os.sched_getaffinity(0))
    assert cpu_list(f"0-{top}") == tuple(sorted(os.sched_getaffinity(0)))
    for bad in (str(top + 1), f"{top}-0", "two", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="choose from"):
            cpu_list(bad)
