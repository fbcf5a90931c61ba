"""Adding a framework is one folder plus one catalog entry: a NumPy "framework" from
tests/numpy_framework/ is registered in catalog.FRAMEWORKS the way a real one is and runs
through `bench run`, its worker process and the results file like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import catalog
from bench.catalog import FrameworkSpec
from bench.cli import main
from bench.results import load_results

pytestmark = pytest.mark.integration

NUMPY = FrameworkSpec("numpy", "tests.numpy_framework.adapter:NumpyAdapter", "numpy", "numpy", aliases=("np",))


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(catalog.FRAMEWORKS, NUMPY.name, NUMPY)


def test_a_registered_numpy_framework_runs_a_case_through_a_real_worker(registered, tmp_path, capsys):
    code = main(["run", "--framework", "np", "--workload", "matmul", "--dtype", "fp32", "--params", "m=64,n=48,k=32",
                 "--budget", "0.05", "--processes", "1", "--out", str(tmp_path), "--run-id", "numpy"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    (row,) = load_results([tmp_path / "numpy.parquet"]).to_dict("records")
    assert (row["framework"], row["status"], row["backend"]) == ("numpy", "ok", "cpu")
    assert row["correct"] and row["effective_precision"] == "fp32-class" and row["implementation"] == "numpy.matmul"
    assert json.loads(row["versions"]) == {"numpy": np.__version__}
    assert row["device_name"]  # the CPU's name, from Adapter.device_name's CPU default
    assert row["median_s"] > 0 and row["flops"] == 2 * 64 * 48 * 32


def test_a_workload_the_new_framework_lacks_is_unsupported(registered, tmp_path):
    assert main(["run", "--framework", "numpy", "--workload", "stream", "--dtype", "fp32", "--budget", "0.05",
                 "--out", str(tmp_path), "--run-id", "s"]) == 0  # fmt: skip
    rows = load_results([tmp_path / "s.parquet"])
    assert set(rows["status"]) == {"unsupported"}
    assert "does not implement 'stream'" in rows["reason"].iloc[0]
