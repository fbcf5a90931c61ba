"""Resolve and write the lock files in locks/ — one per environment `make bench` builds.

On macOS arm64 the Metal plugins pin old stacks (jax-metal holds jax==jaxlib==0.5.0,
tensorflow-metal 1.2.0 stops at TensorFlow 2.19 and Python 3.12), so `make bench` there
builds one environment per framework (.venv-torch, .venv-tensorflow, ...) and an
engine-only .venv, each installed with `pip install -c locks/macos-arm64-<env>.txt`.
Linux keeps one .venv; its lock is the proof that all extras co-resolve there.

Each lock is the output of a resolver dry run for the target platform (no Mac needed):

    MACOSX_DEPLOYMENT_TARGET=14.0 uv pip compile pyproject.toml --extra jax \
        --python-platform aarch64-apple-darwin --python-version 3.12

Without MACOSX_DEPLOYMENT_TARGET uv assumes an old macOS and silently picks old wheels
(torch 2.11, mlx 0.29): newer wheels are tagged macosx_14_0.

Every lock's header records `inputs-sha256`, a hash of what it was resolved from (the
pyproject dependency lines of its extras, requires-python, any constraints file, the
target). tests/test_locks.py recomputes it from the files alone, so a pyproject edit
without a re-lock fails the tests.

    python scripts/lock.py            # re-resolve every lock (needs uv and the network)
    python scripts/lock.py --check    # only say which locks are stale (no network)
    python scripts/lock.py macos-arm64-jax      # just one
uv is taken from $UV, else `uv` on PATH, else `python -m uv` (pip install uv).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = REPO_ROOT / "locks"
PROJECT = "metalbench"


@dataclass(frozen=True)
class Lock:
    """One environment: which extras, for which platform and Python."""

    name: str  # file stem in locks/
    description: str
    extras: tuple[str, ...]
    python_platform: str  # uv's --python-platform
    python_version: str
    env: dict[str, str] = field(default_factory=dict)  # set for the resolver
    constraints: tuple[str, ...] = ()  # repo-relative constraint files

    @property
    def path(self) -> Path:
        return LOCK_DIR / f"{self.name}.txt"

    def command(self) -> list[str]:
        """The resolver command (after `uv`), as run from the repo root."""
        cmd = ["pip", "compile", "pyproject.toml"]
        for extra in self.extras:
            cmd += ["--extra", extra]
        for constraint in self.constraints:
            cmd += ["-c", constraint]
        cmd += ["--python-platform", self.python_platform, "--python-version", self.python_version]
        return cmd + ["--no-header", "--quiet"]

    def command_text(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return " ".join(filter(None, [env, "uv", shlex.join(self.command())]))


MACOS = dict(python_platform="aarch64-apple-darwin", python_version="3.12", env={"MACOSX_DEPLOYMENT_TARGET": "14.0"})

# The macOS names are `macos-arm64-<framework extra>`: the Makefile builds .venv-<extra> from
# locks/macos-arm64-<extra>.txt, so a framework added to the catalog needs one line here. Each
# framework environment also holds the `energy` extra: the worker, running there, reads the counters.
LOCKS: tuple[Lock, ...] = (
    Lock("macos-arm64-engine", "macOS arm64: the engine-only .venv (runner, report, tests)", ("report", "dev"), **MACOS),
    Lock("macos-arm64-torch", "macOS arm64: .venv-torch (PyTorch, MPS)", ("torch", "energy"), **MACOS),
    Lock(
        "macos-arm64-tensorflow",
        "macOS arm64: .venv-tensorflow (TensorFlow + tensorflow-metal)",
        ("tensorflow", "energy"),
        **MACOS,
    ),
    Lock("macos-arm64-jax", "macOS arm64: .venv-jax (JAX + jax-metal)", ("jax", "energy"), **MACOS),
    # A plugin variant: `make bench JAX_PLUGIN=jax-mps` builds .venv-jax-mps from it and runs JAX there.
    Lock("macos-arm64-jax-mps", "macOS arm64: .venv-jax-mps (JAX 0.11 + jax-mps, the maintained Metal plugin)", ("jax-mps", "energy"), **MACOS),
    Lock("macos-arm64-mlx", "macOS arm64: .venv-mlx (MLX, Metal)", ("mlx", "energy"), **MACOS),
    Lock(
        "linux-x86_64-cpu",
        "Linux x86-64: the single .venv (all frameworks, CPU builds), as `make` installs it",
        ("all", "dev"),
        # mlx-cpu wheels are tagged manylinux_2_35 (glibc >= 2.35): uv's plain
        # x86_64-unknown-linux-gnu assumes glibc 2.28 and finds no mlx[cpu] at all.
        python_platform="x86_64-manylinux_2_35",
        python_version="3.11",
        constraints=("constraints/linux-cpu.txt",),
    ),
    Lock(
        "linux-x86_64-cuda",
        "Linux x86-64 + NVIDIA: a CUDA environment (torch's default CUDA wheel, jax-cuda, mlx-cuda); not built by make",
        ("torch", "jax-cuda", "mlx-cuda"),
        python_platform="x86_64-manylinux_2_35",
        python_version="3.12",
    ),
)
LOCKS_BY_NAME = {lock.name: lock for lock in LOCKS}

HASH_LINE = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})\s*$", re.M)
PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", re.M)


def load_pyproject(root: Path = REPO_ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def extra_closure(optional: dict[str, list[str]], extras: tuple[str, ...]) -> dict[str, list[str]]:
    """The extras named plus those they pull in through `metalbench[...]` self-references."""
    seen: dict[str, list[str]] = {}
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise KeyError(f"pyproject.toml has no extra {extra!r}")
        seen[extra] = list(optional[extra])
        for requirement in optional[extra]:
            match = re.match(rf"^{PROJECT}\[([^\]]+)\]", requirement.strip())
            if match:
                todo += [name.strip() for name in match.group(1).split(",")]
    return dict(sorted(seen.items()))


def inputs_hash(lock: Lock, root: Path = REPO_ROOT) -> str:
    """Hash of everything the lock was resolved from; changes whenever a re-lock is due."""
    project = load_pyproject(root)["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "extras": extra_closure(project.get("optional-dependencies", {}), lock.extras),
        "constraints": {c: (root / c).read_text() for c in lock.constraints},
        "target": [lock.python_platform, lock.python_version, sorted(lock.env.items())],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_hash(text: str) -> str | None:
    match = HASH_LINE.search(text)
    return match.group(1) if match else None


def pins(text: str) -> dict[str, str]:
    """{normalised package name: version} of every `name==version` line of a lock."""
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN_LINE.findall(text)}


def find_uv() -> list[str]:
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return ["uv"]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    sys.exit("scripts/lock.py needs uv: `pip install uv`, or set UV=/path/to/uv")


def resolve(lock: Lock, uv: list[str]) -> str:
    env = {**os.environ, **lock.env}
    done = subprocess.run(uv + lock.command(), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{lock.name}: resolution failed:\n$ {lock.command_text()}\n{done.stderr}")
    version = subprocess.run(uv + ["--version"], capture_output=True, text=True).stdout.strip()
    header = [
        f"# {lock.description}",
        f"# inputs-sha256: {inputs_hash(lock)}",
        "# Generated by `python scripts/lock.py` (checked by tests/test_locks.py); do not edit.",
        f"# Resolved with {version}, from the repo root:",
        f"#   {lock.command_text()}",
    ]
    return "\n".join(header) + "\n" + done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"locks to resolve (default: all of {', '.join(LOCKS_BY_NAME)})")
    parser.add_argument("--check", action="store_true", help="only report stale locks; exit 1 if any")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in LOCKS_BY_NAME]
    if unknown:
        parser.error(f"unknown lock(s) {', '.join(unknown)}; choose from {', '.join(LOCKS_BY_NAME)}")
    chosen = [LOCKS_BY_NAME[name] for name in args.names] or list(LOCKS)

    if args.check:
        stale = [
            lock.name
            for lock in chosen
            if not lock.path.exists() or recorded_hash(lock.path.read_text()) != inputs_hash(lock)
        ]
        for name in stale:
            print(f"stale: locks/{name}.txt (run `python scripts/lock.py {name}`)")
        return 1 if stale else 0

    uv = find_uv()
    LOCK_DIR.mkdir(exist_ok=True)
    for lock in chosen:
        print(f"resolving {lock.name}: {lock.command_text()}", flush=True)
        text = resolve(lock, uv)
        tmp = lock.path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(lock.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
