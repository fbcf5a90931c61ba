"""`bench noise`: each case's between-process spread, and what the gate could detect with it.

What it projects must be what the gate states: the same figure, the same moderated spread,
the same bar (checked against `bench.gate.compare` itself). The end-to-end test runs one tiny
torch CPU case in two fresh processes (behaviour only, never how fast)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import noise
from bench.cli import main
from bench.gate import compare as gate
from tests.helpers import installed
from tests.test_compare import frame, processes, write

TINY = ["-f", "torch", "-w", "matmul", "-p", "m=8,n=32,k=32", "-d", "fp32"]


def test_the_detectable_slowdown_is_what_the_gate_states_for_the_same_processes():
    base = processes(4, spread=0.03, seed=3) + processes(4, spread=0.2, seed=4, workload="sdpa")
    cand = processes(2, "c", spread=0.03, seed=5) + processes(2, "c", spread=0.2, seed=6, workload="sdpa")
    stated = {c.key["workload"]: c.detectable for c in gate.compare(frame(*base), frame(*cand)).cases}
    projected = {c.label.split()[1]: c.detectable for c in noise.analyse(frame(*base), noise.Sizes(baseline=4, gate=2))}
    assert projected.keys() == stated.keys() == {"matmul", "sdpa"}
    for workload in stated:
        assert projected[workload] == pytest.approx(stated[workload], rel=1e-9)


def test_a_noisier_case_needs_more_processes_and_more_processes_see_less():
    rows = frame(*processes(6, spread=0.02, seed=1), *processes(6, spread=0.3, seed=2, workload="sdpa", framework="jax"))
    small, large = noise.Sizes(3, 2), noise.Sizes(10, 10)
    by = {c.label.split()[1]: c for c in noise.analyse(rows, small)}
    assert by["sdpa"].spread > by["matmul"].spread and by["sdpa"].detectable > by["matmul"].detectable
    assert by["matmul"].baseline_needed is not None and by["matmul"].processes == 6
    assert by["sdpa"].baseline_needed is None or by["sdpa"].baseline_needed > by["matmul"].baseline_needed
    wider = {c.label.split()[1]: c for c in noise.analyse(rows, large)}
    assert wider["sdpa"].detectable < by["sdpa"].detectable


@pytest.mark.parametrize("sigma", [0.005, 0.01, 0.02])
def test_the_baseline_needed_is_the_fewest_processes_that_state_ten_percent(sigma):
    sizes, config = noise.Sizes(3, 4), gate.GateConfig()
    n = noise.baseline_needed(sigma, 2.0, sizes, 30, config)
    assert n is not None and noise.detectable(sigma, 2.0, sizes, 30, config, n) <= noise.TARGET
    if n > gate.MIN_BASELINE_PROCESSES:
        assert noise.detectable(sigma, 2.0, sizes, 30, config, n - 1) > noise.TARGET
    assert noise.baseline_needed(0.5, 2.0, sizes, 30, config) is None  # no baseline makes up for 4 noisy gate processes


def test_a_case_of_one_process_has_no_spread_and_is_left_out():
    rows = frame(*processes(1, seed=1), *processes(3, seed=2, workload="sdpa"))
    assert [c.label.split()[1] for c in noise.analyse(rows, noise.Sizes())] == ["sdpa"]


def test_the_summary_says_how_many_baseline_processes_state_ten_percent():
    rows = frame(*processes(5, spread=0.02, seed=1), *processes(5, spread=0.05, seed=2, workload="sdpa"))
    cases = noise.analyse(rows, noise.Sizes(3, 2, gate_cases=30))
    lines = noise.summary_lines(cases, noise.Sizes(3, 2, gate_cases=30), 30)
    assert lines[0].startswith("between-process spread (median · 90th percentile of the cases): torch")
    assert "a gate of 3 baseline + 2 gate processes over 30 cases:" in lines[2]
    need = noise.needed_for_coverage(cases)
    assert need is None or f"{need} baseline processes" in lines[3]


def test_defaults_are_make_baseline_and_make_gate_process_counts():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert int(re.search(r"^BASELINE_PROCESSES \?= (\d+)", makefile, re.M).group(1)) == noise.DEFAULT_BASELINE
    assert int(re.search(r"^GATE_PROCESSES \?= (\d+)", makefile, re.M).group(1)) == noise.DEFAULT_GATE


def test_help_teaches_what_it_measures_and_how_to_read_it(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["noise", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for text in ("between-process spread", "--baseline", "--gate", "--processes", "reading it:", "examples:"):
        assert text in out


@pytest.mark.parametrize("argv, expected", [
    (["noise", "--processes", "1"], "expected a whole number from 2 to 100 (a spread needs two processes)"),
    (["noise", "--baseline", "2"], "expected a whole number from 3 to 100 (the gate's minimum)"),
    (["noise", "--gate", "1"], "expected a whole number from 2 to 100 (the gate's minimum)"),
    (["noise", "--figure", "mean"], "unknown figure 'mean' (choose from: min, median)"),
    (["noise", "-w", "conv"], "unknown workload 'conv' (choose from: matmul"),
])
def test_bad_options_are_one_line_and_exit_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_results_without_two_processes_of_a_case_cannot_say_and_exit_2(tmp_path, capsys):
    path = tmp_path / "one.parquet"
    write(path, *processes(1))
    assert main(["noise", str(path)]) == 2
    assert "no case has two or more processes with usable timings" in capsys.readouterr().out


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_a_tiny_torch_case_in_two_processes_then_the_same_rows_read_back(tmp_path, capsys):
    out_json = tmp_path / "noise.json"
    code = main(["noise", *TINY, "--processes", "2", "--budget", "0.05", "--device", "cpu", "-o", str(tmp_path / "rows"),
                 "--run-id", "tiny", "--json", str(out_json), "--gate-cases", "30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "between-process noise" in out and "a gate of 3 baseline + 2 gate processes over 30 cases" in out
    (case,) = json.loads(out_json.read_text())["cases"]
    assert case["processes"] == 2 and case["spread"] >= 0 and case["detectable"] >= 0.05  # never below the gate's floor
    assert main(["noise", str(tmp_path / "rows" / "tiny.parquet"), "--gate-cases", "30"]) == 0
    again = capsys.readouterr().out
    assert "torch/cpu matmul 8×32·32×32 fp32" in again and f"{case['detectable']:.0%}" in again
