"""Faithful stand-ins for the JAX Metal plugins, installed into a throw-away site folder.

Each fake is what the real wheel ships, minus the native library: a module in the
`jax_plugins` namespace package whose `initialize()` registers a backend under the plugin's
own name and priority, plus a `<dist>-<version>.dist-info` with METADATA, RECORD and (where
the real wheel has one) `entry_points.txt`. JAX discovers and initialises it through its own
plugin discovery; the backend factory is the CPU client (`xla_bridge.make_cpu_client`), the
repro of shared/research/metal-readiness-2026-11-29.md. The real plugins call
`xb.register_plugin(NAME, priority=500, library_path=...)`, which ends in
`register_backend_factory(NAME, ...)`: the fakes call that directly since they have no
library. Sources: jax-metal 0.1.1 `jax_plugins/metal_plugin/__init__.py` (no entry point,
name "METAL"); jax-mps 0.11.1 wheel (`jax_plugins/mps`, entry point `mps = jax_plugins.mps`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PLUGIN_INIT = '''\
import jax._src.xla_bridge as xb


def initialize():
    xb.register_backend_factory({name!r}, lambda: xb.make_cpu_client(), priority={priority}, fail_quietly=False)
'''


@dataclass(frozen=True)
class FakePlugin:
    distribution: str
    version: str
    module: str  # under jax_plugins
    name: str  # the backend name it registers, in the real plugin's case
    entry_point: bool
    priority: int = 500


JAX_METAL = FakePlugin("jax-metal", "0.1.1", "metal_plugin", "METAL", entry_point=False)
JAX_MPS = FakePlugin("jax-mps", "0.11.1", "mps", "mps", entry_point=True)
METAL_PJRT = FakePlugin("metal-pjrt-plugin", "0.0.1", "mtl", "mtl", entry_point=True)


def install(site: Path, plugin: FakePlugin) -> Path:
    package = site / "jax_plugins" / plugin.module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(PLUGIN_INIT.format(name=plugin.name, priority=plugin.priority))
    info = site / f"{plugin.distribution.replace('-', '_')}-{plugin.version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {plugin.distribution}\nVersion: {plugin.version}\n")
    record = [f"jax_plugins/{plugin.module}/__init__.py,,", f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if plugin.entry_point:
        (info / "entry_points.txt").write_text(f"[jax_plugins]\n{plugin.module} = jax_plugins.{plugin.module}\n")
        record.append(f"{info.name}/entry_points.txt,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return site


def env_with(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(site), env.get("PYTHONPATH", "")])
    env.pop("JAX_PLATFORMS", None)
    return env


def run_python(site: Path, code: str, python: str = sys.executable) -> dict:
    """Run `code` in a fresh interpreter that sees the fake plugins; it prints one JSON line last."""
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code)], env=env_with(site), capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
