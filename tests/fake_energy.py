"""Fakes of the energy libraries, built from their real code (not from assumptions).

* `FakeAppleEnergyMonitor` / `FakeAppleEnergyMetrics` reproduce zeus-apple-silicon 1.1.0's
  nanobind extension `zeus_apple_silicon.zeus_ext` (read from the sdist):
  - the metric fields and their types, apple_energy/apple_energy.hpp `struct
    AppleEnergyMetrics` (optional int64 mJ, or optional vector for per-core/per-cluster
    fields; None when the chip reports no such channel) and bindings/energy_bindings.hpp
    (`def_rw` of the same 11 names);
  - `begin_window(key, restart=False)` (runtime_error "Measurement with specified key already
    exists." unless restart), `end_window(key)` (runtime_error "No measurement with provided
    key had been started."), `get_cumulative_energy()`; nanobind turns std::runtime_error
    into Python RuntimeError;
  - channel parsing as `parse_sample`: "CPU Energy" → cpu_total_mj, "GPU Energy" → gpu_mj,
    names containing "GPU SRAM" / "ANE" / "DRAM" summed into gpu_sram_mj / ane_mj / dram_mj,
    each value converted to integer mJ by `convert_to_mj` (nJ / 1e6, truncated);
  - samples in the format of the library's own Mocker (tests/tests_python/test_monitor.py:
    {"CPU Energy": (10000000, "mJ"), "GPU Energy": (1000000, "nJ")}), cumulative counters
    whose deltas a window returns;
  - the constructor raises RuntimeError("Failed to create IOReport subscription.") when
    IOReport refuses the subscription (apple_energy.hpp `initialize`).
* `FakeZeusGPUs` / `FakeZeusCPUs` answer as Zeus 0.16.0's `NVIDIAGPUs` and `RAPLCPUs` do:
  `get_total_energy_consumption` in mJ (NVML's unit; CpuDramMeasurement for RAPL),
  `get_power_management_limit` in mW, `supports_get_total_energy_consumption` per index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

_UNITS_TO_MJ = {"nJ": 1e-6, "uJ": 1e-3, "µJ": 1e-3, "mJ": 1.0, "cJ": 10.0, "dJ": 100.0, "J": 1e3, "kJ": 1e6}
FIELDS = ("cpu_total_mj", "efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj", "performance_cluster_mj",
          "efficiency_core_manager_mj", "performance_core_manager_mj", "dram_mj", "gpu_mj", "gpu_sram_mj", "ane_mj")


class FakeAppleEnergyMetrics:
    """AppleEnergyMetrics: the 11 read-write fields, each None until a channel sets it."""

    def __init__(self) -> None:
        for name in FIELDS:
            setattr(self, name, None)


def _to_mj(value: int, unit: str) -> int:
    return int(value * _UNITS_TO_MJ[unit])  # C++ integer arithmetic truncates toward zero


def parse_sample(sample: dict[str, tuple[int, str]]) -> FakeAppleEnergyMetrics:
    """apple_energy.hpp `parse_sample`, for the channel kinds a row's scope reads."""
    m = FakeAppleEnergyMetrics()
    for name, (value, unit) in sample.items():
        mj = _to_mj(value, unit)
        if "CPU Energy" in name:
            m.cpu_total_mj = mj
        elif "DRAM" in name:
            m.dram_mj = (m.dram_mj or 0) + mj
        elif "GPU Energy" in name:
            m.gpu_mj = mj
        elif "GPU SRAM" in name:
            m.gpu_sram_mj = (m.gpu_sram_mj or 0) + mj
        elif "ANE" in name:
            m.ane_mj = (m.ane_mj or 0) + mj
    return m


class FakeAppleEnergyMonitor:
    """AppleEnergyMonitor over a scripted sequence of cumulative IOReport samples."""

    samples: Iterator[dict[str, tuple[int, str]]]
    refuse = False

    def __init__(self) -> None:
        if type(self).refuse:
            raise RuntimeError("Failed to create IOReport subscription.")
        self.begin_samples: dict[str, dict[str, tuple[int, str]]] = {}

    def _sample(self) -> dict[str, tuple[int, str]]:
        return next(type(self).samples)

    def begin_window(self, key: str, restart: bool = False) -> None:
        if key in self.begin_samples and not restart:
            raise RuntimeError("Measurement with specified key already exists.")
        self.begin_samples[key] = self._sample()

    def end_window(self, key: str) -> FakeAppleEnergyMetrics:
        if key not in self.begin_samples:
            raise RuntimeError("No measurement with provided key had been started.")
        first, second = self.begin_samples.pop(key), self._sample()
        # IOReportCreateSamplesDelta: per channel, second - first, in the channel's own unit
        return parse_sample({name: (second[name][0] - first[name][0], unit) for name, (_, unit) in second.items()})

    def get_cumulative_energy(self) -> FakeAppleEnergyMetrics:
        return parse_sample(self._sample())


class FakeZeusAppleModule:
    """What `importlib.import_module("zeus_apple_silicon")` returns: the two bound classes."""

    AppleEnergyMonitor = FakeAppleEnergyMonitor
    AppleEnergyMetrics = FakeAppleEnergyMetrics


@dataclass
class FakeCpuDram:
    cpu_mj: float
    dram_mj: float | None = None


class FakeZeusGPUs:
    """NVIDIAGPUs: one cumulative board-energy counter per GPU (mJ), a power limit (mW)."""

    def __init__(self, energy_mj: list[list[int]], limit_mw: int = 700_000, volta: bool = True) -> None:
        self.readings = [iter(r) for r in energy_mj]
        self.limit_mw, self.volta = limit_mw, volta

    def __len__(self) -> int:
        return len(self.readings)

    def supports_get_total_energy_consumption(self, index: int) -> bool:
        return self.volta

    def get_total_energy_consumption(self, index: int) -> int:
        return next(self.readings[index])

    def get_power_management_limit(self, index: int) -> int:
        return self.limit_mw


class FakeZeusCPUs:
    """RAPLCPUs: one CpuDramMeasurement (mJ) per package per reading."""

    def __init__(self, readings: list[list[FakeCpuDram]]) -> None:
        self.readings = [iter(r) for r in readings]
        self.cpus: list = []

    def __len__(self) -> int:
        return len(self.readings)

    def get_total_energy_consumption(self, index: int) -> FakeCpuDram:
        return next(self.readings[index])
