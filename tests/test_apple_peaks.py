"""Every Apple M1–M5 GPU known by its peaks (bench.apple_peaks), keyed by GPU core count.

The figures are checked against shared/research/field-2026-12-03.md §3.1 (bandwidth from
Apple; M3+ FLOP/s from cores × clock) and the M1/M2 figures Apple published."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import apple_peaks, machine
from bench.roofline import plausibility

FAMILIES = {f"M{g}{tier}" for g in range(1, 6) for tier in ("", " Pro", " Max")} | {"M1 Ultra", "M2 Ultra", "M3 Ultra"}


def part(chip: str, cores: int) -> apple_peaks.ApplePart:
    return next(p for p in apple_peaks.PARTS if p.chip == chip and p.gpu_cores == cores)


def metal_row(chip: str, cores: int | None, dtype: str, tflops: float = 0.0, gbps: float = 0.0) -> dict:
    return {"status": "ok", "backend": "metal", "device_name": "Metal", "chip": f"Apple {chip}", "gpu_cores": cores,
            "dtype": dtype, "tflops": tflops, "gbps": gbps}


def test_every_m1_to_m5_base_pro_max_and_ultra_has_a_sourced_entry():
    assert {p.chip for p in apple_peaks.PARTS} == FAMILIES  # M4 has no Ultra; M5 Ultra has no Apple figure
    for p in apple_peaks.PARTS:
        assert p.gbps > 0 and 0 < p.fp32[0] <= p.fp32[1] and p.fp32_basis and p.gbps_source.startswith("Apple")
        assert (p.matrix_fp16 is not None) == p.chip.startswith("M5")  # only M5 has the Neural Accelerators' roof


@pytest.mark.parametrize("chip,cores,gbps,fp32", [
    ("M1", 8, 68.25, 2.6), ("M1 Pro", 16, 200, 5.2), ("M1 Max", 32, 400, 10.4), ("M1 Ultra", 64, 800, 21.0),
    ("M2", 10, 100, 3.6), ("M2 Pro", 19, 200, 6.8), ("M2 Max", 38, 400, 13.6), ("M2 Ultra", 76, 800, 27.2),
])
def test_m1_and_m2_carry_apples_published_figures(chip, cores, gbps, fp32):
    p = part(chip, cores)
    assert p.gbps == gbps and p.fp32 == (fp32, fp32) and p.fp32_basis == apple_peaks.APPLE_FLOPS


@pytest.mark.parametrize("chip,cores,gbps,low,high", [
    ("M3", 10, 100, 3.6, 4.1), ("M3 Pro", 18, 150, 6.4, 7.4), ("M3 Max", 30, 300, 10.7, 12.3), ("M3 Max", 40, 400, 14.3, 16.4),
    ("M3 Ultra", 80, 819.2, 28.6, 32.8), ("M4", 10, 120, 3.8, 4.6), ("M4 Pro", 20, 273, 7.5, 9.2),
    ("M4 Max", 32, 410, 12.0, 14.7), ("M4 Max", 40, 546, 15.1, 18.4), ("M5", 10, 153, 4.04, 4.04), ("M5 Max", 40, 614, 16.2, 16.2),
])
def test_m3_to_m5_are_cores_times_clock_with_the_surveys_ranges(chip, cores, gbps, low, high):
    p = part(chip, cores)
    assert p.gbps == gbps
    assert p.fp32 == pytest.approx((low, high), abs=0.06)
    assert "FLOP/cycle" in p.fp32_basis and "GHz" in p.fp32_basis


def test_m5_has_two_fp16_roofs_and_a_measured_nax_gemm_is_plausible_only_as_fp16():
    p = part("M5 Max", 40)
    assert p.matrix_fp16[0] == pytest.approx(64.6, abs=0.1) and p.matrix_fp16[1] == pytest.approx(70.0)
    assert p.tflops("fp16") == p.tflops("bf16") == pytest.approx(70.0) and p.tflops("fp32") == pytest.approx(16.16, abs=0.01)
    mlx_gemm = plausibility(metal_row("M5 Max", 40, "fp16", tflops=58.2))  # ml-explore/mlx#3211
    assert mlx_gemm["plausible"] is True
    assert plausibility(metal_row("M5 Max", 40, "fp32", tflops=58.2))["plausible"] is False


def test_a_metal_row_is_judged_by_its_chip_and_core_count():
    """The old table stopped at M2: an M3 Max row had no peak and no verdict."""
    big = plausibility(metal_row("M3 Max", 40, "fp32", tflops=11.4, gbps=318))  # chsasank's measured M3 Max 40c
    assert big["plausible"] is True and big["peak_tflops"] == pytest.approx(16.38, abs=0.01) and big["peak_gbps"] == 400
    assert "Apple M3 Max (40-core GPU)" in big["peak_source"]
    small = plausibility(metal_row("M3 Max", 30, "fp32", gbps=390))
    assert small["peak_gbps"] == 300 and small["plausible"] is False  # 390 GB/s is over 1.25 × 300
    unknown = plausibility(metal_row("M3 Max", None, "fp32", gbps=390))
    assert unknown["peak_gbps"] == 400 and "GPU core count unknown" in unknown["peak_source"]
    assert plausibility(metal_row("M4 Max", 40, "bf16", tflops=13.3))["peak_tflops"] == pytest.approx(18.43, abs=0.01)


def test_an_unknown_apple_chip_gets_no_peak_and_no_verdict():
    row = metal_row("M9 Hyper", 12, "fp32", tflops=1.0)
    assert plausibility(row)["plausible"] is None and plausibility(row)["peak_tflops"] is None


SP_M2_MAX = json.dumps({"SPDisplaysDataType": [{
    "_name": "Apple M2 Max", "sppci_model": "Apple M2 Max", "sppci_cores": "30", "sppci_device_type": "spdisplays_gpu",
    "spdisplays_vendor": "sppci_vendor_Apple", "spdisplays_mtlgpufamilysupport": "spdisplays_metal3",
}]})


def test_gpu_cores_come_from_system_profilers_sppci_cores():
    assert machine.gpu_cores_from_system_profiler(SP_M2_MAX) == 30
    for text in ("", "not json", json.dumps({"SPDisplaysDataType": [{"sppci_model": "AMD Radeon Pro 5500M", "sppci_cores": "24"}]}),
                 json.dumps({"SPDisplaysDataType": [{"sppci_model": "Apple M1"}]}), json.dumps([1, 2])):
        assert machine.gpu_cores_from_system_profiler(text) is None


def test_the_machine_key_and_rows_carry_the_gpu_core_count(monkeypatch):
    monkeypatch.setattr(machine, "gpu_cores", lambda: 40)
    monkeypatch.setattr(machine, "cpu_name", lambda: "Apple M3 Max")
    monkeypatch.setattr(machine.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(machine.platform, "machine", lambda: "arm64")
    info = machine.machine_info()
    assert info["gpu_cores"] == 40 and info["machine"] == "Apple M3 Max (40-core GPU) / Darwin arm64"
    assert machine.stored_machine_key("Apple M3 Max", "macOS 15.1 (arm64)", "metal", "Metal", 40) == info["machine"]
    assert machine.host_key("Apple M3 Max", "Darwin", "arm64", 30) != info["machine"]  # 300 vs 400 GB/s: never one key


def test_the_table_renders_for_chosen_chips_and_refuses_unknown_ones():
    done = subprocess.run([sys.executable, "-m", "bench.apple_peaks", "M3 Max", "Apple M4 Pro", "M5 Max", "--markdown"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("| Apple")]
    assert [ln.split("|")[1].strip() + " " + ln.split("|")[2].strip() for ln in lines] == [
        "Apple M3 Max 30", "Apple M3 Max 40", "Apple M4 Pro 16", "Apple M4 Pro 20", "Apple M5 Max 32", "Apple M5 Max 40"]
    bad = subprocess.run([sys.executable, "-m", "bench.apple_peaks", "M9"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "M9" in bad.stderr and "M5 Max" in bad.stderr and len(bad.stderr.splitlines()) == 1
