"""The maintainers' evidence scripts still run against today's engine.

scripts/process_evidence.py measures its direct side with `bench.direct` (as `bench fidelity`
does); when a signature it calls changed, the scripts broke silently and the next GPU session
found out. Here its child runs one tiny case on torch's CPU backend, and gate_simulation's
block arithmetic runs on made-up run counts.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
TINY = [("matmul", {"m": 8, "n": 32, "k": 32}, "fp32")]


@pytest.fixture()
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_process_evidence_direct_child_measures_a_tiny_case(script):
    pytest.importorskip("torch")
    evidence = script("process_evidence")
    (row,) = evidence.child_direct("torch", "cpu", TINY, repeat=3)
    assert row["case"] == evidence.label(*TINY[0]) and row["queued"] > 0 and row["depth"] >= 2


def test_gate_simulation_judges_each_gate_block_against_each_baseline_block(script):
    simulation = script("gate_simulation")
    pairs = simulation.ci_protocol(n_runs=12, blocks=2, b=3, c=2)
    assert [(list(b), list(g)) for b, g in pairs[:3]] == [([0, 1, 2], [6, 7]), ([0, 1, 2], [8, 9]), ([0, 1, 2], [10, 11])]
    assert len(pairs) == 6 and all(set(b).isdisjoint(g) for b, g in pairs)


def test_llm_evidence_steps_are_valid_bench_runs_of_the_intended_cases(script, tmp_path):
    """The device call's script (scripts/llm_evidence.py) cannot fail on a flag: each step's
    command line parses with bench's own parser, and its -p texts give back its cases."""
    import argparse

    from bench import cli

    evidence = script("llm_evidence")
    for small in (True, False):
        args = argparse.Namespace(tiny=small, processes=1)
        steps = evidence.steps_of(args, tmp_path)
        assert set(steps) | {"sweep"} == set(evidence.CAPS)
        for name, (run_id, cases, frameworks, modes, reference) in steps.items():
            cmd = evidence.bench_run(run_id, cases, frameworks, modes, reference, tmp_path, args, 100.0)
            assert cmd[1:4] == ["-m", "bench", "run"]
            parsed = cli.build_parser().parse_args(cmd[3:])
            assert parsed.processes == 1 and parsed.suite == ("quick" if small else "full")
            assert parsed.reference_only == (name == "refs") and parsed.reference == (name == "quant")
            assert cli._resolve_grid(parsed, ["generate"]) == cases
            planned = cli._plan_cases(_with(parsed, force_memory=True), parsed.framework, ["generate"], ["bf16"], cases)
            assert {c.mode for c in planned if c.framework == "mlx"} == ({"eager"} if name == "quant" else {"eager", "compiled"})


def _with(ns, **changes):
    import argparse

    return argparse.Namespace(**{**vars(ns), **changes})
