"""`bench fidelity`: the suite's figure over fresh processes against a direct call's.

The end-to-end test runs one tiny torch CPU case in two fresh processes a side (behaviour
only: the table, the intervals, the JSON; never how fast anything was). The rest checks the
summary on made-up figures, where the answer is known."""

from __future__ import annotations

import json

import pytest

from bench import direct, fidelity
from bench.cli import main
from tests.helpers import installed

TINY = ["-f", "torch", "-w", "matmul", "-p", "m=8,n=32,k=32", "-d", "fp32"]


def suite_row(process: int, median: float, status: str = "ok", framework: str = "torch") -> dict:
    return {"framework": framework, "workload": "matmul", "params": '{"k":32,"m":8,"n":32}', "dtype": "fp32",
            "status": status, "correct": status == "ok", "median_s": median, "process": process}


def direct_process(median: float) -> list[dict]:
    return [{"workload": "matmul", "params": {"m": 8, "n": 32, "k": 32}, "dtype": "fp32", "queued": median}]


def test_help_teaches_what_it_compares_and_how(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fidelity", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for text in ("fresh processes", "direct", "95% interval", "--processes", "--suite", "--deadline", "examples:"):
        assert text in out


@pytest.mark.parametrize("argv, expected", [
    (["fidelity", "-w", "bmm"], "unknown workload 'bmm' (choose from: matmul, sdpa, stream)"),
    (["fidelity", "-d", "tf32"], "unknown dtype 'tf32' (choose from: fp32, fp16, bf16)"),
    (["fidelity", "--processes", "1"], "expected a whole number from 2 to 100 (an interval needs two processes)"),
    (["fidelity", "--suite", "huge"], "unknown suite 'huge' (choose from: quick, full)"),
    (["fidelity", "-f", "caffe"], "unknown framework 'caffe'"),
    (["fidelity", "--direct-warmup", "-1"], "expected seconds from 0 to"),
])
def test_bad_options_are_one_line_and_exit_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_params_without_one_workload_and_an_empty_selection_are_usage_errors(capsys):
    assert main(["fidelity", "-f", "torch", "-p", "m=8,n=32,k=32"]) == 2
    assert "--params needs exactly one --workload (choose from: matmul, sdpa, stream)" in capsys.readouterr().err
    assert main(["fidelity", "-f", "torch", "-w", "stream", "--suite", "quick"]) == 2  # quick has no stream case
    err = capsys.readouterr().err
    assert "no cases: the quick suite's fidelity cases are matmul" in err and len(err.strip().splitlines()) == 1


def test_each_interval_is_checked_for_the_other_sides_median():
    outcome = fidelity.Outcome([suite_row(0, 1.00e-3), suite_row(1, 1.02e-3), suite_row(2, 1.01e-3)],
                               {"torch": [direct_process(m) for m in (1.01e-3, 0.99e-3, 1.03e-3)]})
    (pair,), missing = fidelity.pairs(outcome)
    assert not missing and pair.suite.n == 3 and pair.direct.n == 3
    assert pair.direct_contains_suite and pair.suite_contains_direct
    slow = fidelity.Outcome([suite_row(p, 2e-3 * (1 + p / 100)) for p in range(3)],
                            {"torch": [direct_process(m) for m in (1.01e-3, 0.99e-3, 1.03e-3)]})
    (pair,), _ = fidelity.pairs(slow)
    assert not pair.direct_contains_suite and not pair.suite_contains_direct and pair.ratio > 1.9
    assert "0 of 1 cases" in fidelity.verdict_line([pair])


def test_a_case_one_side_lacks_is_named_not_compared():
    outcome = fidelity.Outcome([suite_row(0, 1e-3, status="error"), suite_row(1, 1e-3, status="error")],
                               {"torch": [direct_process(1e-3), direct_process(1e-3)]})
    found, missing = fidelity.pairs(outcome)
    assert not found and missing == ["torch matmul 8×32·32×32 fp32: no ok suite row"]


def test_the_direct_side_runs_on_the_device_the_suite_ran_on(monkeypatch):
    """With --device auto the direct side takes the backend the suite's worker reports, and
    the two sides alternate: suite first in even rounds, direct first in odd ones."""
    calls, written = [], []
    study = fidelity.Study(("torch",), (("matmul", {"m": 8, "n": 32, "k": 32}, "fp32"),), processes=2)

    class Writer:
        rows = written

    class FakeRunner:
        def __init__(self, *args, **kwargs):
            pass

        def run(self, cases):
            calls.append(("suite", None))
            written.extend({**suite_row(c.process, 1e-3), "backend": "cpu"} for c in cases)

    def run_direct(framework, device, study):
        calls.append(("direct", device))
        return direct_process(1e-3)

    monkeypatch.setattr(fidelity, "Runner", FakeRunner)
    outcome = fidelity.measure_study(study, Writer(), "t", run_direct=run_direct)  # type: ignore[arg-type]
    assert calls == [("suite", None), ("direct", "cpu"), ("direct", "cpu"), ("suite", None)]
    (pair,), _ = fidelity.pairs(outcome)
    assert outcome.rounds == 2 and pair.suite.n == 2 and pair.direct.n == 2


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_a_tiny_torch_case_in_two_processes_a_side(tmp_path, capsys):
    out_json = tmp_path / "fidelity.json"
    code = main(["fidelity", *TINY, "--processes", "2", "--budget", "0.05", "--repeat", "3", "--device", "cpu", "--direct-warmup", "0.05",
                 "-o", str(tmp_path / "rows"), "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "suite against direct" in out and "of 1 cases: each side's interval contains the other side's median" in out
    result = json.loads(out_json.read_text())
    (pair,) = result["pairs"]
    assert pair["suite"]["n"] == 2 and pair["direct"]["n"] == 2 and pair["ratio"] > 0
    assert pair["suite"]["low_s"] <= pair["suite"]["median_s"] <= pair["suite"]["high_s"]
    assert len(result["direct"]["torch"]) == 2 and list((tmp_path / "rows").glob("fidelity-*.parquet"))


def test_the_direct_side_refuses_what_it_does_not_write():
    with pytest.raises(ValueError, match="choose from: matmul, sdpa, stream"):
        direct.direct_op("torch", "bmm", {}, "fp32", "cpu")
    with pytest.raises(ValueError, match="choose from: torch, jax, mlx, tensorflow"):
        direct.direct_op("numpy", "matmul", {}, "fp32", "cpu")
