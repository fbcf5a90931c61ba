"""Energy per call: the window protocol, the self-check, the sources (through fakes built
from Zeus's and zeus-apple-silicon's real code, tests/fake_energy.py), and the worker's
promise that energy never costs a row its timing."""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench import measure, worker
from bench.energy import Meter, open_meter
from bench.energy.base import EnergyUnavailable
from bench.energy.nvml import NvmlSource
from bench.energy.rapl import RaplSource
from bench.energy.window import check_power, derived, energy_columns, measure_case, measure_window
from bench.plan import CaseMessage
from tests.fake_energy import FakeAppleEnergyMonitor, FakeCpuDram, FakeZeusAppleModule, FakeZeusCPUs, FakeZeusGPUs


class ScriptedSource:
    """A source whose rails advance by a fixed power while the fake clock runs."""

    def __init__(self, clock: "FakeClock", idle_w: float, work_w: float, limit: float | None = None) -> None:
        self.clock, self.idle_w, self.work_w, self.limit = clock, idle_w, work_w, limit
        self.name, self.scope, self.started = "scripted", ("gpu0",), {}

    def begin(self, key: str) -> None:
        self.started[key] = self.clock.now

    def end(self, key: str) -> dict[str, float]:
        watts = self.idle_w if key == "idle" else self.work_w
        return {"gpu0": watts * (self.clock.now - self.started.pop(key)), "cpu0": 1.0}

    def limit_w(self) -> float | None:
        return self.limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _window(idle_w: float, work_w: float, limit: float | None = None, call_s: float = 0.01, calls_per_sample: int = 4):
    clock = FakeClock()
    meter = Meter([ScriptedSource(clock, idle_w, work_w, limit)])

    def take() -> float:
        clock.now += call_s * calls_per_sample
        return call_s

    return meter, measure_window(meter, take, calls_per_sample, idle_s=0.5, window_s=1.0, clock=clock, sleep=clock.sleep)


def test_window_gives_joules_per_call_power_and_idle_from_the_scope_rails():
    meter, window = _window(idle_w=90.0, work_w=450.0)
    cols = energy_columns(meter, window, median_s=0.01, flops=2e12, rates={})
    assert window.calls == 100 and cols["energy_window_calls"] == 100  # 1 s of 4-call samples of 10 ms
    assert cols["energy_j_per_call"] == pytest.approx(4.5)
    assert cols["energy_power_w"] == pytest.approx(450.0) and cols["energy_idle_w"] == pytest.approx(90.0)
    assert cols["energy_valid"] is True and cols["energy_check"].startswith("ok: 450 W during work > 90 W idle")
    assert cols["tflops_per_watt"] == pytest.approx(2e12 / 4.5 / 1e12)
    assert json.loads(cols["energy_rails"]) == {"cpu0": 1.0, "gpu0": 450.0}  # the extra rail recorded, not summed
    assert cols["energy_scope"] == "gpu0"


@pytest.mark.parametrize("work_w, limit, verdict", [(80.0, None, "not above"), (90.0, None, "not above"), (900.0, 700.0, "above the device's stated 700 W limit")])
def test_a_window_not_above_idle_or_above_the_limit_is_flagged(work_w, limit, verdict):
    meter, window = _window(idle_w=90.0, work_w=work_w, limit=limit)
    cols = energy_columns(meter, window, median_s=0.01, flops=1e9, rates={})
    assert cols["energy_valid"] is False and cols["energy_check"].startswith("flagged") and verdict in cols["energy_check"]


def test_a_window_that_ran_at_another_speed_says_so():
    meter, window = _window(idle_w=50.0, work_w=300.0, call_s=0.02)
    assert "2.00x the timed median" in energy_columns(meter, window, median_s=0.01, flops=None, rates={})["energy_check"]


def test_per_token_and_per_step_figures_come_from_the_workloads_own_rate_units():
    assert derived(2.0, None, {"decode_tokens_per_s": 4.0}) == {"tflops_per_watt": None, "tokens_per_joule": 2.0, "joules_per_step": None}
    step = derived(10.0, 5e12, {"tokens_per_s": 2048.0, "samples_per_s": 8.0})
    assert step["tokens_per_joule"] == pytest.approx(204.8) and step["joules_per_step"] == 10.0
    assert derived(1.0, 1e12, {"weight_gbps": 3.0})["tokens_per_joule"] is None


def test_a_cap_bound_reading_within_the_counters_accuracy_is_not_flagged():
    """The H200's matmul read 700.9 W against its 700 W cap: within NVML's stated ±5%, honest."""
    assert check_power(700.9, 129.0, 700.0, tolerance=0.05) == (
        True, "ok: 700.9 W during work > 129 W idle, at the stated 700 W limit (within the counter's ±5%)")
    valid, check = check_power(736.0, 129.0, 700.0, tolerance=0.05)
    assert not valid and "above the device's stated 700 W limit (+5%" in check
    assert check_power(700.9, 129.0, 700.0)[0] is False  # a source stating no accuracy gets no slack


def test_check_power_reads_like_a_verdict():
    assert check_power(120.0, 100.0, None) == (True, "ok: 120 W during work > 100 W idle (no stated limit)")


def test_a_source_that_fails_mid_run_costs_only_the_energy_columns():
    class Failing(ScriptedSource):
        def end(self, key: str) -> dict[str, float]:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST\nmore")

    meter = Meter([Failing(FakeClock(), 1, 2)])
    assert measure_case(meter, lambda: 0.0, 1, 0.0, 0.0, 1e-3, None, {}) == {
        "energy_note": "energy source failed mid-run: RuntimeError: NVML_ERROR_GPU_IS_LOST"}
    assert measure_case("RAPL: absent", lambda: 0.0, 1, 0.0, 0.0, None, None, {}) == {"energy_note": "RAPL: absent"}


# -- the worker ---------------------------------------------------------------------------
def _run_fake_case(monkeypatch, protocol: measure.Protocol, meter) -> dict:
    from tests.fake_framework import FakeAdapter

    monkeypatch.setattr(worker, "_METERS", {})
    monkeypatch.setattr(worker, "open_meter", meter)
    case = CaseMessage("matmul", {"m": 16, "n": 16, "k": 16}, "fp32", ("latency", "queued"), protocol)
    return worker.run_case(FakeAdapter(device="cpu"), case)


FAST = dict(budget_s=0.05, warmup_s=0.0, min_samples=3, sweep_samples=1, energy_idle_s=0.01, energy_window_s=0.02)


def test_energy_off_opens_no_counter_and_keeps_the_timing(monkeypatch):
    def never(backend: str):
        raise AssertionError("--energy off must not open a counter")

    row = _run_fake_case(monkeypatch, measure.Protocol(energy=False, **FAST), never)
    assert row["status"] == "ok" and row["median_s"] > 0
    assert row["energy_note"] == "energy measurement off (--energy off)" and "energy_j_per_call" not in row


def test_a_failing_source_in_the_worker_nulls_energy_and_keeps_the_row(monkeypatch):
    class Broken:
        name, scope = "broken", ("cpu0",)

        def begin(self, key: str) -> None:
            raise OSError("energy_uj vanished")

    row = _run_fake_case(monkeypatch, measure.Protocol(**FAST), lambda backend: Meter([Broken()]))
    assert row["status"] == "ok" and row["median_s"] > 0 and row["queued_n_samples"] >= 3
    assert row["energy_note"] == "energy source failed mid-run: OSError: energy_uj vanished"
    assert row["conditions"] == "normal"


def test_the_worker_measures_the_replayed_calls_with_a_working_source(monkeypatch):
    class Counting:
        name, scope = "counting", ("cpu0",)

        def __init__(self) -> None:
            self.joules = 0.0

        def begin(self, key: str) -> None:
            self.start = self.joules

        def end(self, key: str) -> dict[str, float]:
            self.joules += 5.0 if key == "work" else 0.001
            return {"cpu0": self.joules - self.start}

        def limit_w(self) -> None:
            return None

    row = _run_fake_case(monkeypatch, measure.Protocol(**FAST), lambda backend: Meter([Counting()]))
    assert row["energy_window_calls"] > 0 and row["energy_j_per_call"] == pytest.approx(5.0 / row["energy_window_calls"])
    assert row["energy_valid"] is True and row["tflops_per_watt"] > 0


def test_replay_runs_the_timed_kind_at_its_depth():
    calls = []
    timing = measure.Timing("queued", [1e-3], 8, sweep=measure.QueueSweep([1, 2, 4], [1.0, 0.5, 0.4], 4, "plateau"))
    take, per_sample = measure.replay(timing, lambda: calls.append(1), lambda out: None, lambda out: None)
    take()
    assert per_sample == 8 and len(calls) == 8


# -- the sources, through fakes of Zeus ---------------------------------------------------
def test_nvml_source_reads_the_board_counter_in_joules_and_the_limit_in_watts():
    source = NvmlSource(0, FakeZeusGPUs([[1_000_000, 1_450_000]], limit_mw=700_000))
    source.begin("work")
    assert source.end("work") == {"gpu0": pytest.approx(450.0)} and source.limit_w() == 700.0


def test_nvml_source_refuses_a_gpu_without_the_energy_counter():
    with pytest.raises(EnergyUnavailable, match="older than Volta"):
        NvmlSource(0, FakeZeusGPUs([[0]], volta=False))


def test_rapl_source_reads_packages_and_dram_as_rails():
    cpus = FakeZeusCPUs([[FakeCpuDram(0.0, 0.0), FakeCpuDram(1000.0, 10.0), FakeCpuDram(31000.0, 2010.0)]])
    source = RaplSource(cpus)  # the first reading names the rails
    assert source.scope == ("cpu0", "dram0")
    source.begin("w")
    assert source.end("w") == {"cpu0": pytest.approx(30.0), "dram0": pytest.approx(2.0)}


@pytest.mark.skipif(os.path.exists("/sys/class/powercap/intel-rapl"), reason="this machine has RAPL")
def test_rapl_absent_here_says_why():
    reason = open_meter("cpu", "linux")
    assert isinstance(reason, str) and reason.startswith("RAPL: ") and "does not exist" in reason


def test_no_counter_on_this_vm_gives_reasons_for_cuda_too():
    result = open_meter("cuda", "linux")
    if isinstance(result, Meter):
        pytest.skip("this machine has NVML")
    assert result.startswith("NVML: ")


# -- Apple Silicon, through zeus's real AppleSilicon wrapper over a faithful fake extension --
@pytest.fixture
def fake_apple(monkeypatch):
    from zeus.device.soc import apple

    monkeypatch.setattr(apple, "zeus_apple_silicon", FakeZeusAppleModule)
    monkeypatch.setattr(apple, "zeus_apple_available", True)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    monkeypatch.setattr(FakeAppleEnergyMonitor, "refuse", False)
    return FakeAppleEnergyMonitor


def _samples(*points: tuple[int, int, int]) -> list[dict[str, tuple[int, str]]]:
    """(cpu mJ, gpu nJ, dram mJ) cumulative: units as zeus-apple-silicon's own Mocker tests use them."""
    return [{"CPU Energy": (c, "mJ"), "GPU Energy": (g, "nJ"), "DRAM0": (d, "mJ")} for c, g, d in points]


def test_apple_source_sums_the_soc_rails_zeus_reports(fake_apple):
    from bench.energy.apple import AppleSource

    # first sample: get_available_metrics (cumulative); then a window's begin and end
    fake_apple.samples = iter(_samples((10, 0, 1), (1_000, 5_000_000_000, 100), (4_000, 17_000_000_000, 400)))
    source = AppleSource()
    assert source.scope == ("soc.cpu_total", "soc.gpu", "soc.dram")  # no ANE / GPU SRAM channel: not in scope
    source.begin("work")
    assert source.end("work") == {"soc.cpu_total": 3.0, "soc.gpu": 12.0, "soc.dram": 0.3}
    assert source.limit_w() is None


def test_apple_subscription_refused_is_a_reason_not_a_crash(fake_apple):
    fake_apple.refuse = True
    reason = open_meter("metal", "darwin")
    assert reason == "IOReport: ZeusAppleInitError: Failed to initialize `AppleEnergyMonitor`: Failed to create IOReport subscription."


def test_apple_source_is_not_offered_off_apple_silicon():
    reason = open_meter("metal", "linux")
    assert isinstance(reason, str) and reason.startswith("IOReport: not Apple Silicon")


# -- efficiency ranking and `bench show --efficiency` ----------------------------------------
def _row(framework: str, joules: float | None, valid: bool | None, conditions: str = "normal", **extra) -> dict:
    return {"run_id": "r", "status": "ok", "framework": framework, "backend": "cuda", "machine": "H200", "workload": "matmul",
            "params": '{"k": 8, "m": 8, "n": 8}', "dtype": "bf16", "timing": "queued", "mode": "eager", "correct": True,
            "median_s": 1e-3, "energy_j_per_call": joules, "energy_valid": valid, "energy_scope": "gpu0",
            "conditions": conditions, "energy_check": "ok" if valid else "flagged: 90 W during work is not above 95 W idle",
            "energy_note": None if joules else "energy measurement off (--energy off)", **extra}


def test_efficiency_ranks_only_checked_energy_within_like_conditions():
    import pandas as pd

    from bench.summary import rank_efficiency

    df = pd.DataFrame([_row("torch", 2.0, True), _row("jax", 1.0, True), _row("mlx", 0.1, False),
                       _row("tf", None, None), _row("torch", 0.5, True, conditions="on battery")])
    ranked = rank_efficiency(df)
    standing = {(r.framework, r.conditions): (r.energy_rank, r.not_efficient) for r in ranked.itertuples()}
    assert standing[("jax", "normal")][0] == 1 and standing[("torch", "normal")][0] == 2
    assert pd.isna(standing[("mlx", "normal")][0]) and standing[("mlx", "normal")][1].startswith("energy flagged")
    assert standing[("tf", "normal")][1] == "no energy: energy measurement off (--energy off)"
    assert standing[("torch", "on battery")][0] == 1  # alone in its conditions: never "least" against AC rows


def test_bench_show_efficiency_prints_the_view_and_marks_conditions(tmp_path, capsys):
    from bench.cli import main
    from bench.results import ResultsWriter, normalise_row

    writer = ResultsWriter(tmp_path / "r.parquet")
    for row in (_row("torch", 2.0, True, energy_power_w=400.0, energy_idle_w=90.0, tflops_per_watt=1.5),
                _row("jax", 1.0, True, conditions="thermal pressure heavy")):
        writer.append(normalise_row({**row, "chip": "c", "os": "Linux 6 (x86_64)"}))
    assert main(["show", str(tmp_path / "r.parquet"), "--efficiency"]) == 0
    out = capsys.readouterr().out
    assert "energy per call" in out and "J/call" in out and "thermal pressure heavy" in out
    assert "measured under: thermal pressure heavy" in out  # the speed table says it too


def test_the_evidence_script_pairs_suite_and_direct_joules():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "energy_evidence.py"
    spec = importlib.util.spec_from_file_location("energy_evidence", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    suite = [{"framework": "torch", "workload": "generate", "mode": "compiled", "status": "ok", "params": '{"batch": 4}',
              "energy_j_per_call": 0.5, "energy_power_w": 300.0, "tokens_per_joule": 8.0}]
    direct = [{"framework": "torch", "workload": "generate", "direct_j_per_call": 0.48, "limit_w": 700.0}]
    (line,) = script.table(suite, direct)
    assert line["ratio"] == pytest.approx(0.5 / 0.48) and line["direct_tokens_per_joule"] == pytest.approx(4 / 0.48)
    assert line["limit_w"] == 700.0
