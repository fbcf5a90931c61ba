"""The conditions a row was measured under, read before and after its measured calls.

A Mac under thermal pressure, in Low Power Mode or on battery runs tens of percent
slower (tf-metal-experiments#4: Low Power Mode gave 61% of the throughput), and an
NVIDIA GPU that slowed for heat did too; such a row must say so and never be ranked
silently against rows that were not (bench.summary groups by `conditions`). Every
source is documented and needs no privileges:

* thermal pressure — thermald's level, posted to the Darwin notification system under
  `com.apple.system.thermalpressurelevel` and read with `notify_register_check` /
  `notify_get_state` (libSystem; OSThermalNotification.h levels 0 nominal, 1 moderate,
  2 heavy, 3 trapping, 4 sleeping). These are powermetrics' five levels without root;
  `ProcessInfo.thermalState` folds them into four and lags (macmade/Hot#118,
  angristan/MacThrottle ThermalPressureReader.swift).
* Energy Mode — `pmset -g`: `powermode` (newer macOS) or `lowpowermode` (older), 0
  automatic, 1 low power, 2 high power; the raw integer is kept beside the label.
* power source and charge — `pmset -g batt`: "Now drawing from 'AC Power'|'Battery
  Power'" and "-InternalBattery-0 (id=…)\t95%; discharging; …".
* CPU speed limit — `pmset -g therm` (`CPU_Speed_Limit`, Intel Macs; Apple Silicon prints
  only "Note: No thermal warning level has been recorded", exelban/stats#749).
* NVIDIA — NVML's SM clock and clocks-event (throttle) reasons.
* Linux — the cpufreq scaling governor of every CPU.

A reading that cannot be made is null with its reason in `conditions_note`.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

THERMAL_LEVELS = ("nominal", "moderate", "heavy", "trapping", "sleeping")
THERMAL_KEY = b"com.apple.system.thermalpressurelevel"
POWER_MODES = {0: "automatic", 1: "low power", 2: "high power"}
# NVML clocks-event reasons (nvml.h nvmlClocksEventReason*), and which of them mean the GPU
# slowed for heat or power delivery rather than by design (idle, the power cap at full load).
GPU_REASONS = {
    0x1: "gpu idle", 0x2: "application clocks", 0x4: "sw power cap", 0x8: "hw slowdown", 0x10: "sync boost",
    0x20: "sw thermal slowdown", 0x40: "hw thermal slowdown", 0x80: "hw power brake slowdown", 0x100: "display clock",
}  # fmt: skip
GPU_SLOWDOWNS = 0x8 | 0x20 | 0x40 | 0x80

Run = Callable[..., Any]
_nvml_started: set[Any] = set()


def thermal_pressure(libsystem: Any = None) -> int | str:
    """thermald's pressure level (0-4), or the reason it cannot be read."""
    try:
        lib = libsystem if libsystem is not None else ctypes.CDLL("/usr/lib/libSystem.dylib")
        token, state = ctypes.c_int(0), ctypes.c_uint64(0)
        if lib.notify_register_check(THERMAL_KEY, ctypes.byref(token)) != 0:
            return "thermal pressure: notify_register_check refused com.apple.system.thermalpressurelevel"
        try:
            if lib.notify_get_state(token, ctypes.byref(state)) != 0:
                return "thermal pressure: notify_get_state failed"
        finally:
            lib.notify_cancel(token)
    except (OSError, AttributeError) as exc:
        return f"thermal pressure: libSystem notify API unavailable ({exc})"
    return int(state.value)


def pmset(args: list[str], run: Run = subprocess.run) -> str | None:
    """`pmset` output (read-only -g queries never prompt), or None where it cannot run."""
    try:
        done = run(["/usr/bin/pmset", *args], capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def parse_power_mode(text: str) -> int | None:
    """The Energy Mode integer from `pmset -g` ("powermode 0", or "lowpowermode 1" on older macOS)."""
    match = re.search(r"^\s*(?:low)?powermode\s+(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def parse_battery(text: str) -> tuple[str | None, float | None]:
    """("ac" | "battery" | "ups" | None, percent | None) from `pmset -g batt`."""
    source = re.search(r"drawing from '([^']+)'", text)
    kind = None
    if source:
        kind = {"AC Power": "ac", "Battery Power": "battery", "UPS Power": "ups"}.get(source.group(1), source.group(1))
    percent = re.search(r"InternalBattery.*?\t\s*(\d+)%", text) or re.search(r"InternalBattery[^\n]*?(\d+)%;", text)
    return kind, float(percent.group(1)) if percent else None


def parse_speed_limit(text: str) -> int | None:
    """CPU_Speed_Limit from `pmset -g therm` (Intel Macs); None where it is not reported."""
    match = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text)
    return int(match.group(1)) if match else None


def _mac(values: dict[str, Any], notes: list[str], libsystem: Any, run: Run) -> None:
    level = thermal_pressure(libsystem)
    if isinstance(level, str):
        notes.append(level)
    else:
        values["thermal_level"] = level
    settings, batt, therm = pmset(["-g"], run), pmset(["-g", "batt"], run), pmset(["-g", "therm"], run)
    mode = parse_power_mode(settings) if settings is not None else None
    if mode is None:
        notes.append("power mode: pmset -g " + ("printed no powermode line" if settings is not None else "did not run"))
    values["power_mode"] = mode
    if batt is None:
        notes.append("power source: pmset -g batt did not run")
    values["power_source"], values["battery_percent"] = parse_battery(batt or "")
    values["cpu_speed_limit"] = parse_speed_limit(therm or "")


def gpu_clocks(index: int = 0, nvml: Any = None) -> tuple[int, int] | str:
    """(SM clock MHz, clocks-event reason bits) of GPU `index`, or the reason they cannot be read."""
    try:
        if nvml is None:
            import pynvml as nvml
        if nvml not in _nvml_started:  # once per process: a second nvmlInit only bumps a refcount
            nvml.nvmlInit()
            _nvml_started.add(nvml)
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)), int(reasons(handle))
    except ImportError:
        return "gpu clocks: nvidia-ml-py is not installed in this worker's environment"
    except Exception as exc:  # NVMLError_* (no driver, no permission, not supported)
        return f"gpu clocks: {type(exc).__name__}: {exc}"


def describe_reasons(bits: int) -> str:
    names = [name for bit, name in GPU_REASONS.items() if bits & bit]
    return ", ".join(names) if names else "none"


def cpu_governor(root: Path = Path("/sys/devices/system/cpu")) -> str:
    """Every CPU's scaling governor, counted: "performance" or "powersave x2, performance x2"."""
    found: dict[str, int] = {}
    for path in sorted(root.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            name = path.read_text().strip()
        except OSError:
            continue
        found[name] = found.get(name, 0) + 1
    if not found:
        raise LookupError(f"cpu governor: no {root}/cpu*/cpufreq (no cpufreq driver: a virtual machine or a fixed-clock host)")
    return found.popitem()[0] if len(found) == 1 else ", ".join(f"{k} x{v}" for k, v in sorted(found.items()))


def snapshot(backend: str | None, platform: str = sys.platform, *, libsystem: Any = None, run: Run = subprocess.run,
             nvml: Any = None, cpu_root: Path = Path("/sys/devices/system/cpu")) -> dict[str, Any]:
    """One reading of every condition this machine and backend expose, with `notes` for the rest."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    if platform == "darwin":
        _mac(values, notes, libsystem, run)
    elif platform.startswith("linux"):
        try:
            values["cpu_governor"] = cpu_governor(cpu_root)
        except LookupError as exc:
            notes.append(str(exc))
    if backend == "cuda":
        clocks = gpu_clocks(0, nvml)
        if isinstance(clocks, str):
            notes.append(clocks)
        else:
            values["gpu_sm_clock_mhz"], values["gpu_reasons"] = clocks
    values["notes"] = notes
    return values


def flags(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What makes a row not comparable with rows measured in normal conditions."""
    found = []
    level = max(before.get("thermal_level") or 0, after.get("thermal_level") or 0)
    if level > 0:
        found.append(f"thermal pressure {THERMAL_LEVELS[level] if level < len(THERMAL_LEVELS) else level}")
    if 1 in (before.get("power_mode"), after.get("power_mode")):
        found.append("low power mode")
    if "battery" in (before.get("power_source"), after.get("power_source")):
        found.append("on battery")
    limits = [s.get("cpu_speed_limit") for s in (before, after) if s.get("cpu_speed_limit") is not None]
    if limits and min(limits) < 100:
        found.append(f"cpu speed limit {min(limits)}%")
    slowed = (before.get("gpu_reasons") or 0) & GPU_SLOWDOWNS | (after.get("gpu_reasons") or 0) & GPU_SLOWDOWNS
    if slowed:
        found.append(f"gpu {describe_reasons(slowed)}")
    return found


def columns(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Two snapshots (before and after the measured calls) as the row's condition columns."""
    levels = [s["thermal_level"] for s in (before, after) if s.get("thermal_level") is not None]
    mode = after.get("power_mode", before.get("power_mode"))
    source = "battery" if "battery" in (before.get("power_source"), after.get("power_source")) else after.get("power_source")
    reasons = {k: s.get("gpu_reasons") for k, s in (("before", before), ("after", after))}
    notes = list(dict.fromkeys(before.get("notes", []) + after.get("notes", [])))
    return {
        "conditions": "; ".join(flags(before, after)) or "normal",
        "thermal_pressure": THERMAL_LEVELS[max(levels)] if levels and max(levels) < len(THERMAL_LEVELS) else None,
        "power_mode": f"{POWER_MODES.get(mode, 'unknown')} (powermode {mode})" if mode is not None else None,
        "power_source": source,
        "battery_percent": after.get("battery_percent", before.get("battery_percent")),
        "gpu_sm_clock_mhz_before": before.get("gpu_sm_clock_mhz"),
        "gpu_sm_clock_mhz_after": after.get("gpu_sm_clock_mhz"),
        "gpu_throttle_before": describe_reasons(reasons["before"]) if reasons["before"] is not None else None,
        "gpu_throttle_after": describe_reasons(reasons["after"]) if reasons["after"] is not None else None,
        "cpu_governor": after.get("cpu_governor", before.get("cpu_governor")),
        "conditions_note": "; ".join(notes) or None,
    }
