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
    """The device call's script (scripts/llm_evidence.py) cannot fail on a flag: the suite
    step's command line parses with bench's own parser, runs both modes of every framework
    with --reference at one process, and its -p texts give back the suite's cases (or those
    numbered in --cases)."""
    import argparse

    from bench import cli
    from workloads import WORKLOADS

    evidence = script("llm_evidence")
    assert set(evidence.CAPS) == {"suite", "sweep"}
    for small, numbers in ((True, None), (False, None), (False, [2, 4])):
        args = argparse.Namespace(tiny=small, processes=1, cases=numbers)
        cases = evidence.suite_cases(args)
        suite = WORKLOADS["generate"].cases("quick" if small else "full")
        assert cases == (suite if numbers is None else [suite[i - 1] for i in numbers])
        cmd = evidence.bench_run(cases, tmp_path, args, 100.0)
        assert cmd[1:4] == ["-m", "bench", "run"]
        parsed = cli.build_parser().parse_args(cmd[3:])
        assert parsed.processes == 1 and parsed.suite == ("quick" if small else "full") and parsed.reference and not parsed.reference_only
        assert cli._resolve_grid(parsed, ["generate"]) == cases
        planned = cli._plan_cases(_with(parsed, force_memory=True), parsed.framework, ["generate"], ["bf16"], cases)
        assert {(c.framework, c.mode) for c in planned} == {(f, m) for f in ("torch", "jax", "mlx") for m in ("eager", "compiled")}


def test_llm_evidence_refuses_a_case_the_suite_does_not_have(script, tmp_path, capsys):
    evidence = script("llm_evidence")
    with pytest.raises(SystemExit) as exit_:
        evidence.main([str(tmp_path / "out"), "--deadline", "10", "--cases", "9"])
    assert exit_.value.code == 2 and "the full suite has 4 generate case(s), numbered 1-4" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _with(ns, **changes):
    import argparse

    return argparse.Namespace(**{**vars(ns), **changes})


def test_the_evidence_scripts_read_number_lists_one_way(script, capsys):
    """--cases and --batches (llm_evidence) and --batches (decode_targets) go through
    bench.argtypes.positive_ints: whole numbers of at least 1, comma-separated."""
    import argparse

    from bench.argtypes import positive_ints

    assert positive_ints("1,4, 16") == (1, 4, 16)
    for bad in ("0", "x", "", "2,,3", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integers, comma-separated"):
            positive_ints(bad)
    with pytest.raises(SystemExit) as exit_:
        script("llm_evidence").main(["/nonexistent-out", "--deadline", "1", "--batches", "4,0"])
    assert exit_.value.code == 2 and "expected positive integers, comma-separated, got '4,0'" in capsys.readouterr().err
