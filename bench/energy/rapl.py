"""Intel/AMD CPUs on Linux: RAPL through the powercap interface, read through Zeus.

Zeus's `RAPLCPUs` reads `/sys/class/powercap/intel-rapl:N/energy_uj` (and the package's
`dram` sub-zone where there is one) and tracks counter wrap-around. Since Linux 5.10
(CVE-2020-8694, "Platypus") `energy_uj` is readable by root only unless the machine's
owner relaxed it: metalbench never asks for sudo, so an unreadable counter is a null
with that reason. Virtual machines usually expose no powercap zones at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.energy.base import CounterWindows, EnergyUnavailable, describe


def _in_vm() -> bool:
    try:
        return " hypervisor" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def absent_reason(rapl_dir: str) -> str:
    """Why there is no RAPL directory, as precisely as the machine lets us say."""
    where = "a virtual machine (cpuinfo flag 'hypervisor') whose host passes no RAPL through" if _in_vm() else "no powercap driver loaded"
    if not os.path.exists("/sys/class/powercap"):
        return f"RAPL: /sys/class/powercap does not exist ({where})"
    return f"RAPL: {rapl_dir} does not exist ({where})"


def _cpus() -> Any:
    try:
        from zeus.device.cpu import get_cpus
        from zeus.device.cpu.common import ZeusCPUInitError, ZeusCPUNoPermissionError
        from zeus.device.cpu.rapl import RAPL_DIR, rapl_is_available
    except ImportError as exc:
        raise EnergyUnavailable(f"RAPL: zeus is not installed ({describe(exc)}); pip install 'metalbench[energy]'") from None
    if not rapl_is_available():
        raise EnergyUnavailable(absent_reason(RAPL_DIR))
    try:
        return get_cpus()
    except ZeusCPUNoPermissionError:
        raise EnergyUnavailable("RAPL: energy_uj is readable by root only (Linux >= 5.10, CVE-2020-8694); "
                                "metalbench never asks for sudo (an administrator may chmod o+r it)") from None
    except (ZeusCPUInitError, OSError) as exc:
        raise EnergyUnavailable(f"RAPL: {describe(exc)}") from None


class RaplSource:
    """Every CPU package (and its DRAM zone where present) as rails cpuN / dramN."""

    def __init__(self, cpus: Any = None) -> None:
        self.cpus = cpus if cpus is not None else _cpus()
        if len(self.cpus) == 0:
            raise EnergyUnavailable("RAPL: no package zones (intel-rapl:N) found")
        self.name = "rapl (zeus)"
        self._windows = CounterWindows()
        self.scope = tuple(self._read())

    def _read(self) -> dict[str, float]:
        rails: dict[str, float] = {}
        for i in range(len(self.cpus)):
            m = self.cpus.get_total_energy_consumption(i)  # CpuDramMeasurement, mJ
            rails[f"cpu{i}"] = m.cpu_mj / 1e3
            if m.dram_mj is not None:
                rails[f"dram{i}"] = m.dram_mj / 1e3
        return rails

    def begin(self, key: str) -> None:
        self._windows.begin(key, self._read())

    def end(self, key: str) -> dict[str, float]:
        return self._windows.end(key, self._read())

    def limit_w(self) -> float | None:
        """The packages' long-term limit (PL1, constraint_0) summed, where every one is readable."""
        total = 0.0
        for cpu in getattr(self.cpus, "cpus", []):
            try:
                total += int(Path(cpu.path, "constraint_0_power_limit_uw").read_text()) / 1e6
            except (OSError, ValueError, AttributeError):
                return None
        return total or None
