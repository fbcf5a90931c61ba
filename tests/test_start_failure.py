"""A framework that dies or hangs while starting is started once per run, not once per case;
one that is only slow to start (a busy machine) is waited on.

The TensorFlow case is the real thing: `import tensorflow` loads every
`<site-packages>/tensorflow-plugins/*` library (tensorflow/__init__.py, "Load all plugin
libraries from site-packages/tensorflow-plugins"), and a plugin built against another TF
fails there with `NotFoundError: ... undefined symbol` (macOS: "Symbol not found",
tensorflow#81987, tensorflow#84167). The plugin here is a shared library that needs
`TF_AssignVariable`, one of the symbols tensorflow-metal 1.2.0 imports and TF 2.20 no longer
exports (shared/research/metal-check-2026-12-03.md §1.4). The hang is the reliability audit's
N8 (D29): an import that never returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bench.catalog import FRAMEWORKS, FrameworkSpec
from bench.plan import Case

pytestmark = pytest.mark.integration  # real worker processes

SMALL = {"m": 8, "n": 8, "k": 8}


def _broken_tf_plugin(site) -> None:
    plugins = site / "tensorflow-plugins"
    plugins.mkdir(parents=True)
    source = site.parent / "plugin.c"
    source.write_text("extern void TF_AssignVariable(void);\nvoid plugin_entry(void) { TF_AssignVariable(); }\n")
    subprocess.run([shutil.which("cc"), "-shared", "-fPIC", "-o", str(plugins / "libmetal_plugin.so"), str(source)], check=True)


@pytest.mark.skipif(shutil.which("cc") is None or not sys.platform.startswith("linux"), reason="builds an ELF plugin with cc")
def test_a_tensorflow_plugin_mismatch_costs_one_import_not_one_per_case(run_cases, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    site = tmp_path / "site-packages"  # TF scans every sys.path entry whose name holds "site-packages"
    _broken_tf_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])))
    cases = [Case("tensorflow", "matmul", SMALL, dtype) for dtype in ("fp32", "fp16", "bf16")]
    rows, path = run_cases(cases, frameworks={"tensorflow": FRAMEWORKS["tensorflow"]})
    assert [r["status"] for r in rows] == ["error"] * 3
    for row in rows:
        assert "tensorflow failed to import: NotFoundError:" in row["reason"]
        assert "undefined symbol: TF_AssignVariable" in row["reason"]
    log = (path.with_suffix(".logs") / "tensorflow.log").read_text()
    assert log.count("worker tensorflow exiting") == 1  # one TF import for the whole run


def test_a_hung_import_costs_the_start_time_out_once(run_cases, tmp_path, monkeypatch):
    starts = tmp_path / "starts.txt"
    (tmp_path / "hanging_framework.py").write_text(
        "import os, time\n"
        f"with open({str(starts)!r}, 'a') as f:\n    f.write('started\\n')\n"
        "time.sleep(3600)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")])))
    hanging = FrameworkSpec("hanging", "hanging_framework:Adapter", "hanging_framework", "hanging")
    cases = [Case("hanging", "matmul", SMALL, dtype) for dtype in ("fp32", "fp16", "bf16")]
    rows, _ = run_cases(cases, frameworks={"hanging": hanging}, case_timeout_s=8, min_start_timeout_s=8)
    assert starts.read_text().count("started") == 1
    assert [r["status"] for r in rows] == ["timeout"] * 3
    for row in rows:
        assert "while starting hanging, and no CPU used in its last 8s (hung)" in row["reason"]
        assert "not started again in this run" in row["reason"]


def _framework_module(tmp_path, name: str, body: str) -> FrameworkSpec:
    """A framework whose adapter module runs `body` while it is imported (the fake NumPy
    adapter otherwise), importable by the worker through PYTHONPATH."""
    (tmp_path / f"{name}.py").write_text(f"import time\nfrom tests.fake_framework import FakeAdapter as Adapter\n{body}")
    return FrameworkSpec(name, f"{name}:Adapter", "numpy", name)


def test_a_slow_restart_on_a_busy_machine_is_waited_on_not_given_up(run_cases, tmp_path, monkeypatch):
    """Audit C6: a worker stopped mid-case times out and is replaced; at load 17 the fresh
    worker's start took over the 30-s start window, and the rule above (not started again)
    then cost every later case of the run. A start that keeps using CPU is slow, not broken:
    here the second import spins for 20 s against a 5-s window."""
    starts = tmp_path / "starts.txt"
    slow = _framework_module(tmp_path, "slow_restart", (
        f"with open({str(starts)!r}, 'a+') as f:\n    f.seek(0)\n    again = bool(f.read())\n    f.write('started\\n')\n"
        "end = time.monotonic() + (20 if again else 0)\n"
        "while time.monotonic() < end:  # importing on a busy machine: CPU used all along\n    pass\n"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")])))
    cases = [Case("slow_restart", "matmul", params, "fp32") for params in (SMALL, {**SMALL, "behaviour": "hang"}, SMALL, SMALL)]
    rows, _ = run_cases(cases, frameworks={"slow_restart": slow}, case_timeout_s=8, max_start_timeout_s=5)
    assert [r["status"] for r in rows] == ["ok", "timeout", "ok", "ok"], [r["reason"] for r in rows]
    assert starts.read_text().count("started") == 2  # the hung case's worker, then one fresh worker for the rest
    assert rows[2]["case_wall_s"] > 20  # its start was 4 windows long: the slow path was taken


def test_a_start_that_spins_forever_ends_at_the_start_limit_once(run_cases, tmp_path, monkeypatch):
    """Waiting on a start that uses CPU has an end: an import that never finishes is given up
    at start_limit_s, and (the rule above) not started again for the run's other cases."""
    spinning = _framework_module(tmp_path, "spinning", "while True:\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")])))
    cases = [Case("spinning", "matmul", SMALL, dtype) for dtype in ("fp32", "fp16")]
    rows, _ = run_cases(cases, frameworks={"spinning": spinning}, case_timeout_s=8, max_start_timeout_s=4,
                           start_limit_s=12)
    assert [r["status"] for r in rows] == ["timeout"] * 2
    for row in rows:
        assert "while starting spinning, though it kept using CPU (limit 12s)" in row["reason"]
        assert "not started again in this run" in row["reason"]


@pytest.mark.skipif(shutil.which("cc") is None or not sys.platform.startswith("linux"), reason="builds an ELF plugin with cc")
def test_doctor_names_a_tensorflow_that_fails_to_import(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from bench.doctor import run_probe

    site = tmp_path / "site-packages"
    _broken_tf_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])))
    rows = run_probe(FRAMEWORKS["tensorflow"], "auto", sys.executable)
    assert rows[0]["found"] == "no"
    assert rows[0]["why"].startswith("failed to import: NotFoundError: ")  # was "probe died (1): <last stderr line>"
    assert "undefined symbol: TF_AssignVariable" in rows[0]["why"]
