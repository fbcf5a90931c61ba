"""Who ran this: the machine, OS, chip and code version stamped on every row."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU/SoC marketing name: 'Apple M3 Max', 'AMD EPYC 9654 96-Core Processor', ..."""
    if sys.platform == "darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            ).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            return platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def suite_version() -> str:
    """The git commit of the suite, with '-dirty' when the tree has local changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def os_description() -> str:
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]} ({platform.machine()})"
    return f"{platform.system()} {platform.release()} ({platform.machine()})"


def host_key(chip: str, system: str, arch: str) -> str:
    """The host part of the machine key: 'Apple M3 Max / Darwin arm64'."""
    return f"{chip} / {system} {arch}"


def machine_key(host: str, backend: str | None, device_name: str | None) -> str:
    """The key rows are grouped, ranked, baselined and gated by: the only place it is made.

    `host` is `host_key(...)` of the machine that ran the row. A discrete GPU is what a
    CUDA row measured, so its name leads the key ('NVIDIA H100 80GB HBM3 · Intel(R) Xeon(R)
    Processor / Linux x86_64'); on Metal the chip name ('Apple M3 Max') already names the
    GPU, and CPU rows are the host. A row that failed before its worker said which backend
    it got (backend None) keys by the host alone.
    """
    if backend == "cuda" and device_name:
        return f"{device_name} · {host}"
    return host


def stored_machine_key(chip: str, os_text: str, backend: str | None, device_name: str | None) -> str:
    """The key `machine_key` gives a stored row, recomputed from its `chip`, `os` (as
    `os_description` wrote it: 'Linux 6.8.0 (x86_64)', 'macOS 15.1 (arm64)'), `backend`
    and `device_name` columns: how a committed baseline is checked to be one the runner
    could have written."""
    system = "Darwin" if os_text.startswith("macOS ") else os_text.split(" ", 1)[0]
    arch = os_text.rpartition("(")[2].rstrip(")")
    return machine_key(host_key(chip, system, arch), backend, device_name)


def machine_info() -> dict[str, object]:
    """Columns describing the host; `machine` is the host's key (`machine_key` with no
    backend); a row's own key is made from it once its backend is known."""
    host = socket.gethostname()
    chip = cpu_name()
    return {
        "host": host,
        "os": os_description(),
        "chip": chip,
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": int(psutil.virtual_memory().total),
        "python_version": platform.python_version(),
        "suite_version": suite_version(),
        "machine": machine_key(host_key(chip, platform.system(), platform.machine()), None, None),
    }
