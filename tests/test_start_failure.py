"""A framework that dies or hangs while starting is started once per run, not once per case.

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
        assert "no answer within 8s while starting hanging" in row["reason"]
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
