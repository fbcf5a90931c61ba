"""The lock files in locks/ are current with pyproject.toml and pin what the extras name.

Each lock was written by a resolver dry run for its platform (scripts/lock.py, which needs
the network); these tests only read files. A failure here after a pyproject edit means:
run `make locks` (or `python scripts/lock.py`) and commit the new locks.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from bench.catalog import FRAMEWORKS

REPO_ROOT = Path(__file__).resolve().parent.parent


def _load_lock_script():
    spec = importlib.util.spec_from_file_location("metalbench_lock_script", REPO_ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:  # Python 3.10 without tomli
        pytest.skip(f"scripts/lock.py needs tomllib: {exc}")
    return module


lock_script = _load_lock_script()
LOCKS = lock_script.LOCKS
MACOS_LOCKS = {lock.name.removeprefix("macos-arm64-"): lock for lock in LOCKS if lock.name.startswith("macos-arm64-")}
FRAMEWORK_PACKAGES = {"torch", "tensorflow", "tensorflow-cpu", "tensorflow-metal", "jax", "jaxlib", "jax-metal",
                      "jax-mps", "mlx", "mlx-metal", "mlx-cpu"}
# Environments that serve a catalog framework with another plugin (Makefile JAX_PLUGIN=jax-mps).
PLUGIN_VARIANTS = {"jax-mps": "jax"}


def _pins(lock) -> dict[str, str]:
    return lock_script.pins(lock.path.read_text())


def _target_environment(lock) -> dict[str, str]:
    """Marker values of the platform a lock was resolved for (not of this machine)."""
    env = dict(default_environment())
    env.update(python_version=lock.python_version, python_full_version=f"{lock.python_version}.0",
               implementation_name="cpython", platform_python_implementation="CPython", os_name="posix")
    if lock.python_platform.endswith("apple-darwin"):
        env.update(sys_platform="darwin", platform_system="Darwin", platform_machine="arm64")
    else:
        env.update(sys_platform="linux", platform_system="Linux", platform_machine=lock.python_platform.split("-")[0])
    return env


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_lock_is_current_with_pyproject(lock):
    assert lock.path.exists(), f"locks/{lock.name}.txt is missing: run `python scripts/lock.py {lock.name}`"
    text = lock.path.read_text()
    recorded = lock_script.recorded_hash(text)
    assert recorded is not None, f"locks/{lock.name}.txt has no inputs-sha256 header"
    assert recorded == lock_script.inputs_hash(lock), (
        f"locks/{lock.name}.txt is stale: pyproject.toml (or a constraints file) changed since it was resolved; "
        f"run `python scripts/lock.py {lock.name}` (or `make locks`) and commit it"
    )
    assert lock.command_text() in text, "the header must show the exact resolver command"


def test_inputs_hash_changes_when_an_extra_changes(tmp_path):
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    (tmp_path / "constraints").mkdir()
    (tmp_path / "constraints" / "linux-cpu.txt").write_text((REPO_ROOT / "constraints" / "linux-cpu.txt").read_text())
    jax, torch, linux = (lock_script.LOCKS_BY_NAME[n] for n in ("macos-arm64-jax", "macos-arm64-torch", "linux-x86_64-cpu"))
    before = {lock.name: lock_script.inputs_hash(lock, tmp_path) for lock in (jax, torch, linux)}
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('"jax-metal==0.1.1;', '"jax-metal==0.1.2;'))
    after = {lock.name: lock_script.inputs_hash(lock, tmp_path) for lock in (jax, torch, linux)}
    assert after["macos-arm64-jax"] != before["macos-arm64-jax"]
    assert after["linux-x86_64-cpu"] != before["linux-x86_64-cpu"]  # `all` pulls in the jax extra
    assert after["macos-arm64-torch"] == before["macos-arm64-torch"]  # another extra: no re-lock needed


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_lock_pins_every_requirement_of_its_extras_at_an_allowed_version(lock):
    pins = _pins(lock)
    project = lock_script.load_pyproject()["project"]
    extras = lock_script.extra_closure(project["optional-dependencies"], lock.extras)
    requirements = [Requirement(r) for r in project["dependencies"] + [r for rs in extras.values() for r in rs]]
    env = _target_environment(lock)
    checked = 0
    for req in requirements:
        if req.name == lock_script.PROJECT or (req.marker and not req.marker.evaluate(env)):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"locks/{lock.name}.txt does not pin {req.name} ({req})"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"
        checked += 1
    assert checked >= len(project["dependencies"])


def test_macos_jax_lock_holds_the_jax_metal_stack():
    pins = _pins(MACOS_LOCKS["jax"])
    assert (pins["jax"], pins["jaxlib"], pins["jax-metal"]) == ("0.5.0", "0.5.0", "0.1.1")


def test_macos_jax_mps_lock_holds_the_maintained_plugin_on_jax_0_11():
    pins = _pins(MACOS_LOCKS["jax-mps"])
    assert pins["jax-mps"] == "0.11.1" and "jax-metal" not in pins
    assert Version("0.11") <= Version(pins["jax"]) < Version("0.12") and pins["jaxlib"] == pins["jax"]


def test_macos_tensorflow_lock_holds_tensorflow_metal_and_tf_below_2_20():
    pins = _pins(MACOS_LOCKS["tensorflow"])
    assert pins["tensorflow-metal"] == "1.2.0"
    assert Version("2.18") <= Version(pins["tensorflow"]) < Version("2.20")


def test_macos_mlx_lock_pins_the_metal_backend_at_mlx_version():
    pins = _pins(MACOS_LOCKS["mlx"])
    assert pins["mlx-metal"] == pins["mlx"]
    assert "mlx-cpu" not in pins


def test_macos_locks_were_resolved_for_a_macos_14_target():
    # Without MACOSX_DEPLOYMENT_TARGET=14.0 the resolver silently picks old wheels (torch 2.11, mlx 0.29).
    for lock in MACOS_LOCKS.values():
        assert lock.env.get("MACOSX_DEPLOYMENT_TARGET") == "14.0"
        assert "MACOSX_DEPLOYMENT_TARGET=14.0 uv pip compile" in lock.path.read_text()
    assert Version(_pins(MACOS_LOCKS["torch"])["torch"]) >= Version("2.12")
    assert Version(_pins(MACOS_LOCKS["mlx"])["mlx"]) >= Version("0.30")


def test_each_macos_environment_holds_one_framework_and_the_engine_none():
    assert not FRAMEWORK_PACKAGES & set(_pins(MACOS_LOCKS["engine"]))
    for env in [*FRAMEWORKS, *PLUGIN_VARIANTS]:
        framework = PLUGIN_VARIANTS.get(env, env)
        others = FRAMEWORK_PACKAGES - {p for p in FRAMEWORK_PACKAGES if p.startswith(framework)}
        assert not others & set(_pins(MACOS_LOCKS[env])), f"{env}'s environment pulls in another framework"


def test_every_catalog_framework_has_a_macos_environment_in_the_makefile():
    assert set(MACOS_LOCKS) == {*FRAMEWORKS, *PLUGIN_VARIANTS, "engine"}
    assert {spec.extra for spec in FRAMEWORKS.values()} == set(FRAMEWORKS), "lock names follow the extras"
    makefile = (REPO_ROOT / "Makefile").read_text()
    envs = [line.split(":=", 1)[1].split() for line in makefile.splitlines() if line.startswith("FRAMEWORK_ENVS :=")]
    jax_env = "jax"  # the catalog framework $(JAX_ENV) serves, whichever plugin (jax-mps: .venv-jax-mps)
    assert "JAX_ENV := $(if $(filter jax-mps,$(JAX_PLUGIN)),jax-mps,jax)" in makefile
    resolved = [sorted(jax_env if n == "$(JAX_ENV)" else n for n in names) for names in envs]
    assert sorted(FRAMEWORKS) in resolved, "Makefile's macOS FRAMEWORK_ENVS != the catalog"
    assert set(PLUGIN_VARIANTS) <= set(makefile.split("JAX_PLUGINS :=", 1)[1].splitlines()[0].split())


def test_make_resolves_jax_plugin_to_its_environment_and_refuses_unknown_plugins():
    import shutil
    import subprocess

    if not shutil.which("make"):
        pytest.skip("no make")
    for plugin, env in (("jax-metal", "jax"), ("jax-mps", "jax-mps")):
        out = subprocess.run(["make", "-n", "-p", f"JAX_PLUGIN={plugin}", "-f", "Makefile", "clean"], cwd=REPO_ROOT,
                             capture_output=True, text=True).stdout
        assert f"JAX_ENV := {env}" in out
    bad = subprocess.run(["make", "-n", "JAX_PLUGIN=jax-nope", "clean"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "is not one of: jax-metal jax-mps" in bad.stderr


def _make_dry_run(*args: str) -> list[str]:
    import shutil
    import subprocess

    if not shutil.which("make"):
        pytest.skip("no make")
    done = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_mac_runs_jax_on_the_maintained_plugin_unless_jax_metal_is_asked_for():
    """jax-metal is reported broken on current macOS (jax#34109, open; the JAX maintainers
    advise avoiding it): `make bench` on a Mac uses jax-mps, and JAX_PLUGIN=jax-metal still works."""
    run = next(ln for ln in _make_dry_run("bench", "PLATFORM=Darwin-arm64") if "bench run" in ln)
    assert "--python jax=.venv-jax-mps/bin/python" in run
    run = next(ln for ln in _make_dry_run("bench", "PLATFORM=Darwin-arm64", "JAX_PLUGIN=jax-metal") if "bench run" in ln)
    assert "--python jax=.venv-jax/bin/python" in run


@pytest.mark.parametrize("target", ["bench", "baseline", "gate", "doctor", "env"])
def test_the_front_door_asks_a_mac_for_metal_and_elsewhere_for_auto(target):
    """On a Mac, a framework that cannot reach Metal must be an error row (and a `make doctor`
    line), not CPU rows beside the others' Metal rows; DEVICE= overrides (the hosted macOS CI job)."""
    def bench_lines(*args):
        return [ln for ln in _make_dry_run(target, *args) if "/bench " in ln or "bench.confirm" in ln]

    assert bench_lines("PLATFORM=Darwin-arm64")
    for line in bench_lines("PLATFORM=Darwin-arm64"):
        if " run " in line or " doctor" in line or " env" in line:
            assert "--device metal" in line, line
    for line in bench_lines("PLATFORM=Darwin-arm64", "DEVICE=cpu"):
        assert "--device metal" not in line
    for line in bench_lines("PLATFORM=Linux-x86_64"):
        assert "--device metal" not in line


def test_linux_lock_matches_the_cpu_constraints():
    pins = _pins(lock_script.LOCKS_BY_NAME["linux-x86_64-cpu"])
    constraints = (REPO_ROOT / "constraints" / "linux-cpu.txt").read_text()
    for name, version in lock_script.pins(constraints).items():
        assert pins.get(name) == version, f"linux lock has {name}=={pins.get(name)}, constraints say {version}"
    assert {"tensorflow-cpu", "jax", "mlx-cpu", "torch"} <= set(pins)
    assert "tensorflow-metal" not in pins and "jax-metal" not in pins


def test_lock_check_mode_reports_current_locks_without_network():
    assert lock_script.main(["--check"]) == 0
