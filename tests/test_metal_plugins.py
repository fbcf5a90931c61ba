"""Metal findings 1, 6 (JAX) against faithful plugin fakes (tests/fake_plugins.py).

Each test starts a fresh interpreter in which JAX discovers a fake plugin through its own
discovery (namespace package or entry point), registered under the real plugin's name,
case and priority. The old adapter probed `jax.devices("metal")` and selected the CPU here.
"""

from __future__ import annotations

import os

import pytest

from tests import fake_plugins
from tests.fake_plugins import JAX_METAL, JAX_MPS, METAL_PJRT

pytest.importorskip("jax")

SELECT = """
import json
from bench.frameworks.jax.adapter import JaxAdapter
from bench import selfcheck
import numpy as np
a = JaxAdapter(device="{device}")
out = a.matmul(a.asarray(np.eye(4, dtype=np.float32), "fp32"), a.asarray(np.eye(4, dtype=np.float32), "fp32"))
print(json.dumps({{"backend": a.backend, "versions": a.versions(), "placement": selfcheck.check_placement(a, out).summary,
                  "tf32": a.tf32_unsupported_reason()}}))
"""


@pytest.mark.parametrize("plugin", [JAX_METAL, JAX_MPS, METAL_PJRT], ids=lambda p: p.distribution)
def test_jax_selects_a_metal_plugin_under_its_real_name_and_names_the_distribution(tmp_path, plugin):
    site = fake_plugins.install(tmp_path, plugin)
    got = fake_plugins.run_python(site, SELECT.format(device="auto"))
    assert got["backend"] == "metal"
    assert got["versions"]["jax_platform"] == plugin.name  # "METAL" stays upper case: JAX never lower-cases it
    assert got["versions"]["jax_plugin"] == plugin.distribution
    assert got["versions"][plugin.distribution] == plugin.version
    assert list(got["versions"])[0] == "jax"  # framework_version is the first entry
    assert got["placement"].startswith("ok: ") and "'%s'" % plugin.name in got["placement"]
    assert plugin.distribution in got["tf32"]


def test_jax_metal_under_jax_0_5_0_semantics(tmp_path):
    """Opt-in: METALBENCH_JAX05_PYTHON=<python with jax==jaxlib==0.5.0> runs the same check on
    the version jax-metal pins (this machine's jax is newer)."""
    python = os.environ.get("METALBENCH_JAX05_PYTHON")
    if not python:
        pytest.skip("set METALBENCH_JAX05_PYTHON to an interpreter with jax 0.5.0")
    site = fake_plugins.install(tmp_path, JAX_METAL)
    got = fake_plugins.run_python(site, SELECT.format(device="metal"), python=python)
    assert got["versions"]["jax"] == "0.5.0"
    assert got["backend"] == "metal" and got["versions"]["jax_plugin"] == "jax-metal"


def test_jax_device_cpu_still_selects_the_cpu_beside_a_metal_plugin(tmp_path):
    site = fake_plugins.install(tmp_path, JAX_METAL)
    got = fake_plugins.run_python(site, SELECT.format(device="cpu"))
    assert got["backend"] == "cpu" and "jax_plugin" not in got["versions"]


def test_jax_metal_refusals_are_unsupported_with_the_plugins_own_message(tmp_path):
    """jax#20114 and jax#16417/#20938: the XlaRuntimeError jax-metal raises at compile time."""
    site = fake_plugins.install(tmp_path, JAX_METAL)
    got = fake_plugins.run_python(site, """
        import json
        from bench.frameworks.jax.adapter import JaxAdapter
        try:
            from jax.errors import JaxRuntimeError as XlaRuntimeError
        except ImportError:
            from jaxlib.xla_extension import XlaRuntimeError
        a = JaxAdapter(device="metal")
        dot = XlaRuntimeError("UNKNOWN: <stdin>:1:0: error: failed to legalize operation 'mhlo.dot_general'\\n<stdin>:1:0: note: see current operation")
        bf16 = XlaRuntimeError("UNKNOWN: <unknown>:0: error: 'func.func' op One or more function input/output data types are not supported.")
        crash = XlaRuntimeError("INTERNAL: something broke")
        print(json.dumps([a.unsupported_reason(dot), a.unsupported_reason(bf16), a.unsupported_reason(crash)]))
    """)
    assert got[0] == "jax-metal on Metal: UNKNOWN: <stdin>:1:0: error: failed to legalize operation 'mhlo.dot_general'"
    assert "data types are not supported" in got[1] and got[1].startswith("jax-metal on Metal")
    assert got[2] is None  # a plugin crash that is not a refusal stays an error


def test_a_run_on_a_fake_metal_plugin_records_metal_rows_with_the_plugin(tmp_path):
    """End to end through the runner and worker: rows are Metal rows, `versions` names the
    plugin, both self-checks ran, and a plugin refusal does not kill the worker."""
    site = fake_plugins.install(tmp_path / "site", JAX_MPS)
    import subprocess
    import sys

    import pandas as pd

    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "-f", "jax", "--device", "metal", "-w", "matmul,stream", "-d", "fp32",
         "--out", str(out), "--run-id", "fake-mps"],
        env=fake_plugins.env_with(site), capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pd.read_parquet(out / "fake-mps.parquet")
    assert set(rows["backend"]) == {"metal"} and set(rows["status"]) == {"ok"}, rows[["status", "reason"]]
    assert all('"jax_plugin": "jax-mps"' in v for v in rows["versions"])
    assert all(v.startswith("valid: ") for v in rows["barrier_check"])
    assert all(v.startswith("ok: ") for v in rows["placement_check"])


METAL_FAILS = "INTERNAL: Metal device could not be initialised"  # what a VM or an unsupported macOS gives the client


def _run(site, *args, run_id):
    import subprocess
    import sys

    import pandas as pd

    out = site.parent / "results"
    done = subprocess.run([sys.executable, "-m", "bench", "run", "-f", "jax", "-w", "matmul", "-d", "fp32", "--budget", "0.1",
                           "--out", str(out), "--run-id", run_id, *args],
                          env=fake_plugins.env_with(site), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_parquet(out / f"{run_id}.parquet")


def test_a_jax_metal_that_cannot_start_leaves_the_cpu_rows_alone(tmp_path):
    """JAX initialises every discovered plugin and re-raises a plugin's failure for every
    backend (xla_bridge.backends(); register_plugin uses fail_quietly=False), so the old worker
    lost its CPU rows too ("Unable to initialize backend 'METAL'"), and the hosted macOS CPU
    gate with them. --device cpu starts the JAX worker with JAX_PLATFORMS=cpu."""
    site = fake_plugins.install(tmp_path / "site", JAX_METAL, fail=METAL_FAILS)
    rows = _run(site, "--device", "cpu", run_id="cpu")
    assert set(rows["status"]) == {"ok"}, rows[["status", "reason"]].to_string()
    assert set(rows["backend"]) == {"cpu"}
    metal = _run(site, "--device", "metal", run_id="metal")  # asked for Metal, it still says why not
    assert set(metal["status"]) == {"error"} and all(METAL_FAILS in r for r in metal["reason"])


def test_only_the_cpu_device_limits_the_jax_worker_to_the_cpu_platform():
    from bench.catalog import FRAMEWORKS

    assert FRAMEWORKS["jax"].worker_env("fp32", "cpu")["JAX_PLATFORMS"] == "cpu"
    for device in ("auto", "metal", "cuda"):
        assert "JAX_PLATFORMS" not in FRAMEWORKS["jax"].worker_env("fp32", device)
