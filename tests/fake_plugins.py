"""The JAX Metal plugins as their wheels ship them, minus the native library, in a throw-away site folder.

jax-metal 0.1.1 and jax-mps 0.11.1: every Python file and the dist-info (METADATA, WHEEL,
entry_points.txt, top_level/licence) are the wheels' own, verbatim, kept in
tests/plugin_wheels/ (its README names the wheels and their sha256). JAX finds them through
its own discovery (the `jax_plugins` namespace package and the `jax_plugins` entry point,
which both wheels declare) and runs their own `initialize()`: jax-metal's
`xb.register_plugin("METAL", priority=500, library_path=...)`, jax-mps's version check,
`register_plugin("mps", ...)`, fused-op registration and its monkeypatch of
`jax.nn.dot_product_attention`. Two edits make a fake, both marked in the file:

* after the plugin's imports, one line installs the stand-in (tests/plugin_standin.py): for
  the plugin's name only, loading the library does nothing and the client is XLA's CPU
  client (or raises what the plugin raises when Metal cannot start, `fail=`);
* jax-mps refuses any platform but macOS (`if sys.platform != "darwin":`): that test is
  turned off.

metal-pjrt-plugin (name "mtl") has no wheel (build from source): its fake registers a CPU
factory under its name, the shape its source gives (jax_plugins/mtl, entry point).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(__file__).resolve().parent / "plugin_wheels"
STANDIN = Path(__file__).resolve().parent / "plugin_standin.py"

SOURCE_ONLY_INIT = '''\
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
    library: str = ""  # the native library's path in the wheel, under jax_plugins/<module>/ ("": no wheel)
    after: str = ""  # the wheel's line after which the stand-in is installed
    edits: tuple[tuple[str, str], ...] = ()  # (the wheel's text, the fake's) — each must occur once
    priority: int = 500

    @property
    def wheel_dir(self) -> Path:
        return WHEELS / f"{self.distribution.replace('-', '_')}-{self.version}"


JAX_METAL = FakePlugin("jax-metal", "0.1.1", "metal_plugin", "METAL", library="pjrt_plugin_metal_14.dylib",
                       after="import jax._src.xla_bridge as xb\n")
JAX_MPS = FakePlugin("jax-mps", "0.11.1", "mps", "mps", library="lib/libpjrt_plugin_mps.dylib",
                     after="from pathlib import Path\n",
                     edits=(('    if sys.platform != "darwin":\n', '    if False:  # metalbench fake: the wheel refuses any OS but macOS\n'),))
METAL_PJRT = FakePlugin("metal-pjrt-plugin", "0.0.1", "mtl", "mtl")


def install(site: Path, plugin: FakePlugin, fail: str | None = None) -> Path:
    """The plugin in `site` as its wheel installs it; `fail`: the client raises RuntimeError(fail)
    where the real plugin cannot start Metal (jax#34109, a VM)."""
    package = site / "jax_plugins" / plugin.module
    if not plugin.library:
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(SOURCE_ONLY_INIT.format(name=plugin.name, priority=plugin.priority))
        return _dist_info_for_source_plugin(site, plugin)
    shutil.copytree(plugin.wheel_dir, site, dirs_exist_ok=True)
    init = package / "__init__.py"
    text = init.read_text()
    for old, new in plugin.edits:
        assert text.count(old) == 1, f"{plugin.distribution}: {old!r} is no longer in the wheel's __init__.py"
        text = text.replace(old, new)
    assert text.count(plugin.after) == 1, f"{plugin.distribution}: {plugin.after!r} is no longer in the wheel's __init__.py"
    hook = f"import _metalbench_standin; _metalbench_standin.install({plugin.name!r}, fail={fail!r})  # metalbench fake: no native library\n"
    init.write_text(text.replace(plugin.after, plugin.after + hook))
    shutil.copy(STANDIN, site / "_metalbench_standin.py")
    (package / plugin.library).parent.mkdir(parents=True, exist_ok=True)
    (package / plugin.library).write_bytes(b"")  # the wheel's path exists (jax-mps searches for it)
    info = site / f"{plugin.wheel_dir.name}.dist-info"
    files = sorted(p.relative_to(site).as_posix() for top in ("jax_plugins", info.name) for p in (site / top).rglob("*")
                   if p.is_file() and p.name != "RECORD")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files) + f"{info.name}/RECORD,,\n")
    return site


def _dist_info_for_source_plugin(site: Path, plugin: FakePlugin) -> Path:
    info = site / f"{plugin.distribution.replace('-', '_')}-{plugin.version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {plugin.distribution}\nVersion: {plugin.version}\n")
    (info / "entry_points.txt").write_text(f"[jax_plugins]\n{plugin.module} = jax_plugins.{plugin.module}\n")
    record = [f"jax_plugins/{plugin.module}/__init__.py,,", f"{info.name}/METADATA,,", f"{info.name}/entry_points.txt,,",
              f"{info.name}/RECORD,,"]
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
