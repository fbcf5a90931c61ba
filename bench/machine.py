"""Who ran this: the machine, OS, chip and code version stamped on every row."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
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


def gpu_cores_from_system_profiler(text: str) -> int | None:
    """The Apple GPU's core count in `system_profiler SPDisplaysDataType -json` output: its
    entry's `sppci_cores`, a string ({"SPDisplaysDataType": [{"_name": "Apple M2 Max",
    "sppci_model": "Apple M2 Max", "sppci_cores": "30", "spdisplays_vendor":
    "sppci_vendor_Apple", ...}]}, the shape macOS inventory tools parse); None if absent."""
    try:
        entries = json.loads(text).get("SPDisplaysDataType") or []
    except (ValueError, AttributeError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        apple = entry.get("spdisplays_vendor") == "sppci_vendor_Apple" or str(entry.get("sppci_model", "")).startswith("Apple ")
        cores = re.fullmatch(r"\s*(\d+)\s*", str(entry.get("sppci_cores", "")))
        if apple and cores and int(cores.group(1)) > 0:
            return int(cores.group(1))
    return None


@functools.lru_cache(maxsize=1)
def gpu_cores() -> int | None:
    """This Mac's GPU core count, which sets its bandwidth and FLOP/s (an M3 Max has 30 or 40
    cores, 300 or 400 GB/s; bench.apple_peaks); None off macOS or when system_profiler fails."""
    if sys.platform != "darwin":
        return None
    try:
        done = subprocess.run(["system_profiler", "SPDisplaysDataType", "-json"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return gpu_cores_from_system_profiler(done.stdout) if done.returncode == 0 else None


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


def host_key(chip: str, system: str, arch: str, gpu_cores: int | None = None) -> str:
    """The host part of the machine key: 'Apple M3 Max (40-core GPU) / Darwin arm64' (the core
    count where the OS reports it: the 30- and 40-core M3 Max differ by a third in bandwidth)."""
    gpu = f" ({gpu_cores}-core GPU)" if gpu_cores else ""
    return f"{chip}{gpu} / {system} {arch}"


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


def stored_machine_key(chip: str, os_text: str, backend: str | None, device_name: str | None,
                       gpu_cores: int | None = None) -> str:
    """The key `machine_key` gives a stored row, recomputed from its `chip`, `os` (as
    `os_description` wrote it: 'Linux 6.8.0 (x86_64)', 'macOS 15.1 (arm64)'), `backend`
    and `device_name` columns: how a committed baseline is checked to be one the runner
    could have written."""
    system = "Darwin" if os_text.startswith("macOS ") else os_text.split(" ", 1)[0]
    arch = os_text.rpartition("(")[2].rstrip(")")
    return machine_key(host_key(chip, system, arch, gpu_cores), backend, device_name)


def machine_info() -> dict[str, object]:
    """Columns describing the host; `machine` is the host's key (`machine_key` with no
    backend); a row's own key is made from it once its backend is known."""
    host = socket.gethostname()
    chip = cpu_name()
    cores = gpu_cores()
    return {
        "host": host,
        "os": os_description(),
        "chip": chip,
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": int(psutil.virtual_memory().total),
        "gpu_cores": cores,
        "python_version": platform.python_version(),
        "suite_version": suite_version(),
        "machine": machine_key(host_key(chip, platform.system(), platform.machine(), cores), None, None),
    }
