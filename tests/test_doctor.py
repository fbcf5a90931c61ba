"""`bench doctor`: one pasteable table per framework and backend, self-checks included,
exit 0 (all usable) / 1 (degraded) / 2 (nothing usable)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import doctor
from bench.catalog import FrameworkSpec
from tests import fake_plugins

FAKE = FrameworkSpec("fake", "tests.fake_framework:FakeAdapter", "numpy", "fake")
FORGETFUL = FrameworkSpec("forgetful", "tests.fake_framework:ForgetfulAdapter", "numpy", "fake")
MISSING = FrameworkSpec("missing", "no_such_framework_module:Adapter", "no_such_framework_module", "missing")


def test_a_framework_with_a_valid_barrier_is_usable_and_absent_backends_say_why():
    table = doctor.diagnose({"fake": FAKE}, {})
    by_backend = {r["backend"]: r for r in table}
    assert by_backend["cpu"]["found"] == "yes" and by_backend["cpu"]["barrier"].startswith("valid: ")
    assert by_backend["metal"]["found"] == "no" and by_backend["metal"]["why"] == "fake reports no metal backend here"
    assert doctor.verdict(table, "cpu")[0] == doctor.EXIT_USABLE


def test_an_early_barrier_is_not_usable_and_one_usable_framework_is_degraded():
    forgetful = doctor.diagnose({"forgetful": FORGETFUL}, {})
    assert next(r for r in forgetful if r["backend"] == "cpu")["barrier"].startswith("INVALID")
    assert doctor.verdict(forgetful, "cpu")[0] == doctor.EXIT_NOTHING
    both = doctor.diagnose({"fake": FAKE, "missing": MISSING}, {})
    code, status = doctor.verdict(both, "cpu")
    assert code == doctor.EXIT_DEGRADED and "not: missing" in status
    assert any(r["framework"] == "missing" and r["found"] == "not installed" for r in both)


def test_the_table_is_markdown_and_literal():
    table = [{"framework": "x", "backend": "cpu", "found": "yes", "why": "[bold]a|b[/bold]\nnext"}]
    text = doctor.render(table, {"chip": "Apple M2"}, "all usable")
    assert "| x | cpu | yes | &#91;bold&#93;a&#124;b&#91;/bold&#93; next |" in text  # bench.textsafe: inert, one line
    assert text.splitlines()[-1] == "verdict: all usable"


@pytest.mark.parametrize("name,expected", [("Apple M1 Pro", "emulated"), ("Apple M2 Ultra", "emulated"), ("Apple M4 Max", "native")])
def test_bf16_is_emulated_on_m1_and_m2_gpus(name, expected):
    assert doctor.bf16_support("metal", name).startswith(expected)


def test_bad_framework_name_is_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "bench", "doctor", "-f", "nosuch"], capture_output=True, text=True)
    assert done.returncode == 2 and "nosuch" in done.stderr and "torch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_doctor_on_a_fake_jax_metal_plugin_names_the_plugin_and_exits_0(tmp_path):
    pytest.importorskip("jax")
    site = fake_plugins.install(tmp_path, fake_plugins.JAX_MPS)
    done = subprocess.run([sys.executable, "-m", "bench", "doctor", "-f", "jax", "--device", "metal"],
                          env=fake_plugins.env_with(site), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    metal = next(line for line in done.stdout.splitlines() if line.startswith("| jax | metal |"))
    assert "| yes |" in metal and "jax_plugin jax-mps" in metal and "jax-mps 0.11.1" in metal and "valid: " in metal
