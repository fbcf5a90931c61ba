"""The regression gate, as a specification: matching, every verdict, exit codes, bad
input, and the statistics proven by simulation on synthetic samples (fixed seeds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench.gate import compare as gate
from bench.gate.baseline import baseline_path, machine_slug, write_baselines
from bench.cli import main
from bench.results import ResultsError, ResultsWriter, load_results
from bench.stats import holm_adjust, min_mann_whitney_p, ratio_of_medians

MACHINE = "Test CPU / Linux x86_64"
PARAMS = '{"k":64,"m":64,"n":64}'


def samples(median: float, n: int = 40, spread: float = 0.02, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * np.exp(rng.normal(0.0, spread, n)))


def row(run: str = "r1", framework: str = "torch", dtype: str = "fp32", median: float = 1e-3, seed: int = 0,
        **over) -> dict:
    s = over.pop("samples", None) or samples(median, seed=seed)
    base = {
        "run_id": run, "framework": framework, "backend": "cpu", "workload": "matmul", "workload_hash": "h1",
        "params": PARAMS, "dtype": dtype, "status": "ok", "timing": "queued", "machine": MACHINE,
        "samples_s": s, "median_s": float(np.median(s)), "queued_samples_s": s, "queued_median_s": float(np.median(s)),
        "latency_samples_s": s, "latency_median_s": float(np.median(s)), "queued_inner_loops": 4,
        "latency_inner_loops": 1, "effective_precision": f"{dtype}-class", "precision_matches": True, "correct": True,
    }
    base.update(over)
    return base


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def verdicts(baseline: pd.DataFrame, candidate: pd.DataFrame, **config) -> dict[str, str]:
    result = gate.compare(baseline, candidate, gate.GateConfig(**config))
    return {f"{c.key['framework']} {c.key['dtype']}": c.verdict for c in result.cases}


def write(path: Path, *rows: dict) -> Path:
    w = ResultsWriter(path)
    for r in rows:
        w.append(r)
    return path


# -- matching -----------------------------------------------------------------------------
def test_cases_match_on_framework_backend_workload_params_dtype_machine_and_timing():
    base = frame(row(), row(framework="jax"))
    cand = frame(row(seed=1), row(framework="jax", machine="Other / Linux"), row(framework="mlx"))
    result = gate.compare(base, cand)
    got = {(c.key["framework"], c.key["machine"], c.verdict) for c in result.cases}
    assert got == {("jax", MACHINE, "missing"), ("jax", "Other / Linux", "new"), ("mlx", MACHINE, "new"),
                   ("torch", MACHINE, "same")}


def test_latency_is_never_compared_with_queued():
    base = frame(row(timing="queued"))
    cand = frame(row(timing="latency", seed=1))
    with pytest.raises(ResultsError, match="no case in common"):
        gate.compare(base, cand)


def test_explicit_metric_reads_its_own_samples():
    base = frame(row(timing="latency", queued_samples_s=samples(1e-3)))
    cand = frame(row(timing="latency", seed=1, queued_samples_s=samples(1.5e-3, seed=1)))
    assert verdicts(base, cand, metric="median_s") == {"torch fp32": "same"}
    assert verdicts(base, cand, metric="queued_median_s") == {"torch fp32": "slower"}


def test_error_row_without_backend_or_timing_still_matches_its_case():
    base = frame(row())
    cand = frame(row(status="error", backend=None, timing=None, samples_s=None, reason="worker died"))
    cand.loc[0, "samples_s"] = None
    result = gate.compare(base, cand)
    assert [c.verdict for c in result.cases] == ["now failing"]
    assert "worker died" in result.cases[0].detail


# -- every verdict ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "candidate_over, verdict, exit_code",
    [
        ({"seed": 1}, "same", 0),
        ({"median": 1.5e-3, "seed": 1}, "slower", 1),
        ({"median": 0.6e-3, "seed": 1}, "faster", 0),
        ({"status": "error", "reason": "boom"}, "now failing", 1),
        ({"status": "timeout"}, "now failing", 1),
        ({"correct": False}, "now failing", 1),
        ({"effective_precision": "bf16-class", "seed": 1}, "precision changed", 1),
        ({"workload_hash": "h2", "median": 3e-3}, "changed definition", 0),
    ],
)
def test_each_verdict_and_its_exit_code(candidate_over, verdict, exit_code):
    result = gate.compare(frame(row()), frame(row(**candidate_over)))
    assert [c.verdict for c in result.cases] == [verdict]
    assert result.exit_code == exit_code


def test_now_correct_and_not_measured_do_not_fail():
    base = frame(row(correct=False), row(framework="jax", status="unsupported"))
    cand = frame(row(seed=1), row(framework="jax", status="unsupported"))
    result = gate.compare(base, cand)
    assert {c.key["framework"]: c.verdict for c in result.cases} == {"torch": "now correct", "jax": "not measured"}
    assert result.exit_code == 0


def test_slower_but_within_threshold_is_same():
    assert verdicts(frame(row()), frame(row(median=1.03e-3, seed=1))) == {"torch fp32": "same"}


def test_large_but_not_significant_change_is_same_with_a_note():
    noisy = dict(samples=samples(1e-3, n=8, spread=0.6, seed=3))
    result = gate.compare(frame(row(**noisy)), frame(row(samples=samples(1.3e-3, n=8, spread=0.6, seed=4))))
    case = result.cases[0]
    assert case.verdict == "same" and "not significant" in case.detail


def test_too_few_samples_cannot_be_judged_and_exits_2():
    result = gate.compare(frame(row(samples=[1e-3, 1e-3, 1e-3])), frame(row(seed=1)))
    assert [c.verdict for c in result.cases] == ["insufficient"]
    assert result.exit_code == 2


def test_a_slowdown_must_show_in_every_candidate_run():
    base = frame(*(row(run=f"b{i}", seed=i) for i in range(3)))
    flaky = frame(row(run="c1", median=1.5e-3, seed=10), row(run="c2", seed=11))
    real = frame(row(run="c1", median=1.5e-3, seed=10), row(run="c2", median=1.5e-3, seed=11))
    assert gate.compare(base, flaky).cases[0].verdict == "same"
    assert "not reproduced" in gate.compare(base, flaky).cases[0].detail
    assert gate.compare(base, real).cases[0].verdict == "slower"


def test_a_case_noisier_between_baseline_runs_than_the_threshold_needs_a_larger_change():
    base = frame(row(run="b1", seed=1), row(run="b2", median=1.2e-3, seed=2), row(run="b3", median=1.1e-3, seed=3))
    result = gate.compare(base, frame(row(run="c", median=1.25e-3, seed=4)))
    case = result.cases[0]
    assert case.noise_floor == pytest.approx(0.2, abs=0.02)
    assert case.verdict == "same"
    assert gate.compare(base, frame(row(run="c", median=1.6e-3, seed=4))).cases[0].verdict == "slower"


# -- bad input: exit 2 with one line --------------------------------------------------------
def test_no_overlapping_cases_is_exit_2(tmp_path, capsys):
    a = write(tmp_path / "a.parquet", row())
    b = write(tmp_path / "b.parquet", row(machine="Elsewhere / Darwin arm64"))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "no case in common" in err and len(err.strip().splitlines()) == 1


def test_empty_results_file_is_exit_2(tmp_path, capsys):
    a = write(tmp_path / "a.parquet", row())
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(a).slice(0, 0), empty)
    assert main(["compare", str(a), str(empty)]) == 2
    assert "no result rows" in capsys.readouterr().err
    (tmp_path / "zero.parquet").write_bytes(b"")
    assert main(["compare", str(a), str(tmp_path / "zero.parquet")]) == 2


def test_different_schema_versions_are_exit_2(tmp_path, capsys):
    a = write(tmp_path / "a.parquet", row())
    old = tmp_path / "old.parquet"
    pq.write_table(pq.read_table(a).replace_schema_metadata({b"metalbench_schema_version": b"0"}), old)
    assert main(["compare", str(old), str(a)]) == 2
    assert "schema version 0" in capsys.readouterr().err


def test_unreadable_file_and_bad_threshold_are_exit_2(tmp_path):
    a = write(tmp_path / "a.parquet", row())
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert main(["compare", str(a), str(tmp_path / "junk.parquet")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(a), str(a), "--threshold", "fast"])
    assert exc.value.code == 2


# -- the command line -----------------------------------------------------------------------
def test_compare_cli_exit_codes_markdown_and_json(tmp_path):
    a = write(tmp_path / "a.parquet", row(), row(framework="jax"))
    same = write(tmp_path / "same.parquet", row(seed=1), row(framework="jax", seed=2))
    slow = write(tmp_path / "slow.parquet", row(seed=1), row(framework="jax", median=1.3e-3, seed=2))
    assert main(["compare", str(a), str(same)]) == 0
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    assert main(["compare", str(a), str(slow), "--threshold", "10%", "--markdown", str(md), "--json", str(js)]) == 1
    assert "slower" in md.read_text() and "jax/cpu matmul" in md.read_text()
    doc = json.loads(js.read_text())
    assert doc["exit_code"] == 1 and doc["config"]["threshold"] == pytest.approx(0.10)
    assert {c["verdict"] for c in doc["cases"]} == {"slower", "same"}


@pytest.mark.parametrize("command", ["compare", "baseline", "export"])
def test_each_gate_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and command in capsys.readouterr().out


def test_threshold_accepts_percent_and_fraction():
    assert gate.parse_threshold("5%") == pytest.approx(0.05)
    assert gate.parse_threshold("0.07") == pytest.approx(0.07)
    with pytest.raises(ValueError):
        gate.parse_threshold("-3%")


def test_baseline_is_written_per_machine_and_compares_like_any_results(tmp_path):
    runs = [write(tmp_path / f"r{i}.parquet", row(run=f"r{i}", seed=i)) for i in range(3)]
    (path,) = write_baselines(runs, tmp_path / "baselines")
    assert path == baseline_path(MACHINE, tmp_path / "baselines")
    assert path.name == f"{machine_slug(MACHINE)}.parquet" == "test-cpu-linux-x86-64.parquet"
    assert load_results([path])["run_id"].nunique() == 3
    cand = write(tmp_path / "cand.parquet", row(run="c", seed=9))
    assert main(["compare", str(path), str(cand)]) == 0


def test_export_writes_pytest_benchmark_json(tmp_path):
    a = write(tmp_path / "a.parquet", row(), row(status="unsupported", dtype="tf32", samples_s=None))
    out = tmp_path / "pb.json"
    assert main(["export", "--pytest-benchmark", str(out), str(a)]) == 0
    doc = json.loads(out.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= doc.keys()
    assert len(doc["benchmarks"]) == 2  # latency and queued of the one ok row
    stats = doc["benchmarks"][0]["stats"]
    assert stats["rounds"] == len(stats["data"]) == 40
    assert stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]


def test_pytest_benchmark_compare_reads_the_export(tmp_path):
    pytest.importorskip("pytest_benchmark")
    before, after = tmp_path / "0001_before.json", tmp_path / "0002_after.json"
    main(["export", "--pytest-benchmark", str(before), str(write(tmp_path / "a.parquet", row()))])
    main(["export", "--pytest-benchmark", str(after), str(write(tmp_path / "b.parquet", row(seed=1)))])
    tool = Path(sys.executable).with_name("pytest-benchmark")
    proc = subprocess.run([str(tool), "compare", str(before), str(after)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "matmul" in proc.stdout and "Failed to load" not in proc.stdout + proc.stderr


# -- the statistics, proven by simulation -----------------------------------------------------
def test_holm_adjustment_and_the_smallest_reachable_p():
    assert list(holm_adjust([0.01, 0.04, 0.03, 0.5])) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert min_mann_whitney_p(3, 3) == pytest.approx(0.1)
    assert min_mann_whitney_p(500, 500) < 1e-200


def test_ratio_interval_covers_a_known_ratio():
    b = [samples(1e-3, seed=1)]
    c = [samples(1.2e-3, seed=2)]
    est = ratio_of_medians(b, c, seed=0)
    assert est.ci_low < 1.2 < est.ci_high
    assert ratio_of_medians(b, c, seed=0) == est  # deterministic


def _simulated_pair(rng: np.random.Generator, n_cases: int, run_noise: float, factor: dict[int, float]):
    """Cases whose runs shift by a random between-run offset (the noise that fools gates)
    on top of within-run noise; `factor` slows chosen cases in the candidate."""
    def side(run: str, slow: dict[int, float]) -> pd.DataFrame:
        rows = []
        for i in range(n_cases):
            shift = np.exp(rng.normal(0, run_noise)) * slow.get(i, 1.0)
            s = list(1e-3 * (i + 1) * shift * np.exp(rng.normal(0, 0.03, 30)))
            rows.append(row(run=run, framework=f"fw{i}", samples=s))
        return frame(*rows)

    return side("base", {}), side("cand", factor)


def test_aa_false_alarms_stay_rare_when_run_noise_is_below_the_threshold():
    rng = np.random.default_rng(42)
    alarms = compared = 0
    for _ in range(20):
        base, cand = _simulated_pair(rng, 25, run_noise=0.01, factor={})
        result = gate.compare(base, cand, gate.GateConfig(n_resamples=200))
        alarms += len(result.by_verdict("slower"))
        compared += len(result.cases)
    assert alarms / compared <= 0.01


def test_injected_slowdowns_are_caught_and_named():
    rng = np.random.default_rng(7)
    caught = {1.10: 0, 1.25: 0}
    trials = 20
    for _ in range(trials):
        for factor in caught:
            chosen = set(rng.choice(25, size=3, replace=False).tolist())
            base, cand = _simulated_pair(rng, 25, run_noise=0.01, factor={i: factor for i in chosen})
            result = gate.compare(base, cand, gate.GateConfig(n_resamples=200))
            named = {int(c.key["framework"][2:]) for c in result.by_verdict("slower")}
            caught[factor] += named == chosen
    assert caught[1.25] / trials >= 0.95
    assert caught[1.10] / trials >= 0.80
