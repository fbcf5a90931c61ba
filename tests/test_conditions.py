"""Run conditions: parsers fed the real outputs of macOS tools, thermald's level through a
fake of the libSystem notify API, NVML through a fake of pynvml, and the rule that a row
measured under thermal pressure, in Low Power Mode or on battery is never ranked silently
against rows that were not."""

from __future__ import annotations

import ctypes
import subprocess
from types import SimpleNamespace

import pandas as pd
import pytest

from bench import conditions
from bench.summary import rank

# `pmset -g therm` on an M1 Pro MacBook Pro, macOS 12.1 (exelban/stats#749, 2021-12-14); the
# same three notes on an M3 MacBook Pro under throttling (macmade/Hot#80, 2023-12-10).
THERM_APPLE_SILICON = """Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
Note: No CPU power status has been recorded
"""
# `pmset -g thermlog` records on an Intel Mac, throttled (yujitach/MenuMeters#158, 2020-06-26).
THERM_INTEL_THROTTLED = """2020-06-26 12:30:37 +0200 CPU Power notify
\tCPU_Scheduler_Limit \t= 40
\tCPU_Available_CPUs \t= 8
\tCPU_Speed_Limit \t= 28
"""
# `pmset -g` on an arm64 MacBook Pro, macOS 12 (AppHouseKitchen/AlDente#603, 2022-03-19): `lowpowermode`.
PMSET_G_ARM64_2022 = """
System-wide power settings:
 SleepDisabled\t\t1
Currently in use:
 standby              1
 Sleep On Power Button 1
 hibernatefile        /var/vm/sleepimage
 powernap             1
 networkoversleep     0
 disksleep            10
 sleep                1 (sleep prevented by bluetoothd, powerd, sharingd)
 hibernatemode        3
 ttyskeepawake        1
 displaysleep         10
 tcpkeepalive         1
 lowpowermode         1
 womp                 1
"""
# Newer macOS prints `powermode` instead (jordibruin/cooldown#4 on an M3 Max, 2024-01-06;
# jacklandrin/OnlySwitch#168 on macOS 14.7.5): 0 automatic, 1 low power, 2 high power
# (alfredapp/low-power-mode-workflow#4; ronyfadel/BatteriesReleases#13 on an M2 Max).
PMSET_G_POWERMODE = PMSET_G_ARM64_2022.replace(" lowpowermode         1", " powermode            2")
# `pmset -g batt`: on battery with the id column (spaceship-prompt/spaceship-prompt#640, 2019);
# on AC, charged (imwally/battstat#2); a Mac without a battery prints the first line only
# (liquidprompt/liquidprompt#317).
BATT_ON_BATTERY = "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=5374051)\t95%; discharging; 3:06 remaining present: true\n"
BATT_ON_AC = "Now drawing from 'AC Power'\n -InternalBattery-0 \t88%; AC attached; not charging present: true\n"
BATT_DESKTOP = "Now drawing from 'AC Power'\n"


def test_pmset_therm_on_apple_silicon_reports_no_speed_limit_and_intel_does():
    assert conditions.parse_speed_limit(THERM_APPLE_SILICON) is None
    assert conditions.parse_speed_limit(THERM_INTEL_THROTTLED) == 28


@pytest.mark.parametrize("text, mode", [(PMSET_G_ARM64_2022, 1), (PMSET_G_POWERMODE, 2), ("Currently in use:\n standby 1\n", None)])
def test_energy_mode_is_read_under_either_key(text, mode):
    assert conditions.parse_power_mode(text) == mode


@pytest.mark.parametrize("text, expected", [(BATT_ON_BATTERY, ("battery", 95.0)), (BATT_ON_AC, ("ac", 88.0)), (BATT_DESKTOP, ("ac", None))])
def test_power_source_and_charge(text, expected):
    assert conditions.parse_battery(text) == expected


class FakeLibSystem:
    """libSystem's notify API as ctypes calls it (notify.h): notify_register_check(name,
    int *token) and notify_get_state(token, uint64_t *state) return 0 (NOTIFY_STATUS_OK)
    and write through their pointer arguments; thermald posts its pressure level under
    com.apple.system.thermalpressurelevel (angristan/MacThrottle ThermalPressureReader.swift)."""

    def __init__(self, level: int, status: int = 0) -> None:
        self.level, self.status, self.cancelled = level, status, []

    def notify_register_check(self, name: bytes, token: object) -> int:
        assert name == b"com.apple.system.thermalpressurelevel"
        ctypes.cast(token, ctypes.POINTER(ctypes.c_int)).contents.value = 42
        return 0

    def notify_get_state(self, token: ctypes.c_int, state: object) -> int:
        assert token.value == 42
        ctypes.cast(state, ctypes.POINTER(ctypes.c_uint64)).contents.value = self.level
        return self.status

    def notify_cancel(self, token: ctypes.c_int) -> int:
        self.cancelled.append(token.value)
        return 0


def test_thermal_pressure_comes_from_thermalds_notification():
    lib = FakeLibSystem(level=2)
    assert conditions.thermal_pressure(lib) == 2 and lib.cancelled == [42]
    assert conditions.thermal_pressure(FakeLibSystem(0, status=1)) == "thermal pressure: notify_get_state failed"


def _pmset(outputs: dict[tuple[str, ...], str]):
    def run(cmd, **kwargs):
        assert cmd[0] == "/usr/bin/pmset" and "-g" in cmd and kwargs.get("stdin") == subprocess.DEVNULL  # read-only, never prompts
        return SimpleNamespace(returncode=0, stdout=outputs[tuple(cmd[1:])])

    return run


def test_a_hot_mac_in_low_power_mode_on_battery_is_flagged_with_every_reason():
    run = _pmset({("-g",): PMSET_G_ARM64_2022, ("-g", "batt"): BATT_ON_BATTERY, ("-g", "therm"): THERM_APPLE_SILICON})
    before = conditions.snapshot("metal", "darwin", libsystem=FakeLibSystem(0), run=run)
    after = conditions.snapshot("metal", "darwin", libsystem=FakeLibSystem(2), run=run)
    cols = conditions.columns(before, after)
    assert cols["conditions"] == "thermal pressure heavy; low power mode; on battery"
    assert cols["thermal_pressure"] == "heavy" and cols["power_mode"] == "low power (powermode 1)"
    assert cols["power_source"] == "battery" and cols["battery_percent"] == 95.0 and cols["conditions_note"] is None


def test_a_cool_mac_on_ac_is_normal():
    run = _pmset({("-g",): PMSET_G_POWERMODE.replace("powermode            2", "powermode            0"),
                  ("-g", "batt"): BATT_ON_AC, ("-g", "therm"): THERM_APPLE_SILICON})
    snap = conditions.snapshot("metal", "darwin", libsystem=FakeLibSystem(0), run=run)
    cols = conditions.columns(snap, snap)
    assert cols["conditions"] == "normal" and cols["power_mode"] == "automatic (powermode 0)" and cols["thermal_pressure"] == "nominal"


class FakeNvml:
    """pynvml as used: nvmlInit, a handle by index, the SM clock, clocks-event reasons (bit mask)."""

    NVML_CLOCK_SM = 1

    def __init__(self, clock: int, reasons: int) -> None:
        self.clock, self.reasons = clock, reasons

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetClockInfo(self, handle: str, kind: int) -> int:
        return self.clock

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: str) -> int:
        return self.reasons


def test_gpu_clock_and_throttle_reasons_before_and_after():
    before = conditions.snapshot("cuda", "linux", nvml=FakeNvml(1980, 0x1), cpu_root=conditions.Path("/nonexistent"))
    after = conditions.snapshot("cuda", "linux", nvml=FakeNvml(1755, 0x4 | 0x20), cpu_root=conditions.Path("/nonexistent"))
    cols = conditions.columns(before, after)
    assert (cols["gpu_sm_clock_mhz_before"], cols["gpu_sm_clock_mhz_after"]) == (1980, 1755)
    assert cols["gpu_throttle_before"] == "gpu idle" and cols["gpu_throttle_after"] == "sw power cap, sw thermal slowdown"
    assert cols["conditions"] == "gpu sw thermal slowdown"  # the power cap at full load is by design: not a flag


def test_cpu_governor_is_counted_per_cpu(tmp_path):
    for i, gov in enumerate(["performance", "powersave", "powersave"]):
        (tmp_path / f"cpu{i}" / "cpufreq").mkdir(parents=True)
        (tmp_path / f"cpu{i}" / "cpufreq" / "scaling_governor").write_text(gov + "\n")
    assert conditions.cpu_governor(tmp_path) == "performance x1, powersave x2"


def test_this_linux_vm_says_why_conditions_are_null():
    cols = conditions.columns(*(conditions.snapshot("cpu", "linux"),) * 2)
    assert cols["conditions"] == "normal"
    assert cols["cpu_governor"] is not None or "cpu governor: no" in cols["conditions_note"]


def _row(framework: str, seconds: float, cond: str | None) -> dict:
    return {"status": "ok", "framework": framework, "machine": "m", "workload": "matmul", "params": "{}", "dtype": "fp32",
            "timing": "queued", "mode": "eager", "conditions": cond, "correct": True, "median_s": seconds}


def test_rows_under_other_conditions_are_ranked_only_with_their_like():
    ranked = rank(pd.DataFrame([_row("torch", 1.0, "normal"), _row("jax", 2.0, None), _row("mlx", 0.5, "on battery")]))
    by = dict(zip(ranked["framework"], ranked["rank"]))
    assert by == {"torch": 1, "jax": 2, "mlx": 1}  # mlx on battery is not "fastest" against rows on AC
    assert ranked.loc[ranked["framework"] == "jax", "conditions"].item() == "normal"  # unrecorded reads as normal
