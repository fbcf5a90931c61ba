"""NVIDIA GPUs: NVML's total-energy counter, read through Zeus.

`nvmlDeviceGetTotalEnergyConsumption` is a cumulative board-energy counter in mJ (Volta
and newer), which Zeus's `NVIDIAGPUs.get_total_energy_consumption` returns; ZeusMonitor
measures a window by subtracting two of its readings, and so does this source. It needs
no privileges. The stated limit is NVML's power-management limit
(`get_power_management_limit`, mW), the ceiling the board enforces. The board enforces it
as an average, and NVML states its power readings accurate to within ±5% of the draw
(nvmlDeviceGetPowerUsage's documentation), so a cap-bound row may read a little above the
limit: `limit_tolerance` lets the self-check allow that 5% and no more.
"""

from __future__ import annotations

from typing import Any

from bench.energy.base import CounterWindows, EnergyUnavailable, describe


def _gpus() -> Any:
    """Zeus's NVIDIA GPU manager, or EnergyUnavailable with the reason it is not there."""
    try:
        from zeus.device.gpu import get_gpus
        from zeus.device.gpu.common import ZeusGPUInitError
        from zeus.device.gpu.nvidia import NVIDIAGPUs, nvml_is_available
    except ImportError as exc:
        raise EnergyUnavailable(f"NVML: zeus is not installed ({describe(exc)}); pip install 'metalbench[energy]'") from None
    if not nvml_is_available():
        raise EnergyUnavailable("NVML: no NVIDIA driver library (libnvidia-ml) could be initialised")
    try:
        gpus = get_gpus()
    except ZeusGPUInitError as exc:
        raise EnergyUnavailable(f"NVML: {describe(exc)}") from None
    if not isinstance(gpus, NVIDIAGPUs):
        raise EnergyUnavailable(f"NVML: Zeus found {type(gpus).__name__}, not NVIDIA GPUs")
    return gpus


class NvmlSource:
    """Board energy of one NVIDIA GPU (index as the framework sees it, after CUDA_VISIBLE_DEVICES)."""

    def __init__(self, index: int = 0, gpus: Any = None) -> None:
        self.gpus = gpus if gpus is not None else _gpus()
        if index >= len(self.gpus):
            raise EnergyUnavailable(f"NVML: GPU {index} is not visible ({len(self.gpus)} visible)")
        try:
            supported = self.gpus.supports_get_total_energy_consumption(index)
        except Exception as exc:  # Zeus maps every NVML error to a ZeusGPU*Error
            raise EnergyUnavailable(f"NVML: {describe(exc)}") from None
        if not supported:
            raise EnergyUnavailable(f"NVML: GPU {index} is older than Volta and has no total-energy counter")
        self.index = index
        self.rail = f"gpu{index}"
        self.name = "nvml total-energy counter (zeus)"
        self.scope = (self.rail,)
        self.limit_tolerance = 0.05
        self._windows = CounterWindows()

    def _read(self) -> dict[str, float]:
        return {self.rail: self.gpus.get_total_energy_consumption(self.index) / 1e3}

    def begin(self, key: str) -> None:
        self._windows.begin(key, self._read())

    def end(self, key: str) -> dict[str, float]:
        return self._windows.end(key, self._read())

    def limit_w(self) -> float | None:
        try:
            return self.gpus.get_power_management_limit(self.index) / 1e3
        except Exception:  # a limit the driver will not state is no limit to check against
            return None
