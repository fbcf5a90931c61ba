"""The measurement scripts quoted in closing notes still run against today's worker.

scripts/fidelity.py, small_ops.py and process_states.py call the worker's own code path
(`bench.worker.run_case`); when its signature changed they broke silently, and the next GPU
session found out. Here each child runs one tiny case on torch's CPU backend.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
TINY = [("matmul", {"m": 8, "n": 32, "k": 32}, "bf16")]


@pytest.fixture()
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_fidelity_suite_and_direct_sides_measure_the_same_case(script, monkeypatch):
    fidelity = script("fidelity")
    monkeypatch.setitem(fidelity.CASES, "quick", [("matmul", {"m": 8, "n": 32, "k": 32}, "fp32")])
    suite = fidelity.child_suite("torch", "cpu", "quick", budget=0.05)
    direct = fidelity.child_direct("torch", "cpu", "quick")
    assert suite[0]["case"] == direct[0]["case"] and suite[0]["correct"]
    assert suite[0]["latency"] > 0 and suite[0]["queued"] > 0 and direct[0]["queued"] > 0
    row = fidelity.summarise("torch", [suite], [direct])[0]
    assert row["queued"]["suite"] == [suite[0]["queued"]]


def test_small_ops_child_interleaves_suite_and_direct(script, monkeypatch):
    small_ops = script("small_ops")
    monkeypatch.setattr(small_ops, "SMALL", TINY)
    out = small_ops.child("torch", "cpu", 0.05, first_round=False)
    row = out["small"][0]
    assert out["backend"] == "cpu" and row["correct"]
    assert row["queued_median_s"] > 0 and row["suite2"] > 0 and len(row["direct"]["queued_each"]) == 2


def test_process_states_child_records_segments_and_interleaved_pairs(script, monkeypatch):
    states = script("process_states")
    monkeypatch.setattr(states, "SMALL", TINY)
    out = states.child("torch", "cpu", segments=2, interleave=True, budget=0.05)
    case = out["cases"][0]
    assert len(case["segments"]) == 2 and all(s["per_call"] > 0 for s in case["segments"])
    assert len(case["interleaved"]) == 2 and all(p["suite"] and p["direct"] for p in case["interleaved"])


def test_llm_evidence_steps_are_valid_bench_runs_of_the_intended_cases(script, tmp_path):
    """The device call's script (scripts/llm_evidence.py) cannot fail on a flag: each step's
    command line parses with bench's own parser, and its -p texts give back its cases."""
    import argparse

    from bench import cli

    evidence = script("llm_evidence")
    for small in (True, False):
        args = argparse.Namespace(tiny=small, processes=1)
        for cases, modes in (([evidence.shape(16, small)], "eager,compiled"), ([evidence.shape(8, small), evidence.shape(4, small)], evidence.BEST_MODES)):
            cmd = evidence.bench_run("r", cases, modes, tmp_path, args, 100.0)
            assert cmd[1:4] == ["-m", "bench", "run"]
            parsed = cli.build_parser().parse_args(cmd[3:])
            assert parsed.reference and parsed.processes == 1 and parsed.suite == ("quick" if small else "full")
            assert cli._resolve_grid(parsed, ["generate"]) == cases
            planned = cli._plan_cases(_with(parsed, force_memory=True), ["torch", "jax", "mlx"], ["generate"], ["bf16"], cases)
            assert {c.mode for c in planned if c.framework == "mlx"} == ({"eager"} if modes == evidence.BEST_MODES else {"eager", "compiled"})


def _with(ns, **changes):
    import argparse

    return argparse.Namespace(**{**vars(ns), **changes})
