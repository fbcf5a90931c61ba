"""The regression gate, as a specification: matching, every verdict, exit codes, bad
input, interleaved A/B, and the statistics proven by simulation on synthetic
per-process figures (fixed seeds; no timing is measured here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import ab as gate_ab
from bench.gate import compare as gate
from bench.gate.baseline import baseline_path, machine_slug, write_baselines
from bench.cli import main
from bench.results import ResultsError, ResultsWriter, load_results
from bench import stats
from workloads import params_key

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


def processes(n: int, side: str = "b", median: float = 1e-3, spread: float = 0.01, seed: int = 0, **over) -> list[dict]:
    """`n` runs (processes) of one case: each lands at its own level (between-process
    noise `spread`, log-normal), with within-process noise around it."""
    rng = np.random.default_rng(seed)
    return [row(run=f"{side}{i}", median=median * float(np.exp(rng.normal(0, spread))), seed=seed * 100 + i, **over)
            for i in range(n)]


def sides(base_over: dict | None = None, cand_over: dict | None = None, n_base: int = 4, n_cand: int = 3,
          **common) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A baseline of 4 processes and a candidate of 3, one case, as make baseline/make gate take them."""
    base = processes(n_base, "b", seed=1, **{**common, **(base_over or {})})
    cand = processes(n_cand, "c", seed=2, **{**common, **(cand_over or {})})
    return frame(*base), frame(*cand)


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
    base = frame(*processes(4), *processes(4, framework="jax"), *processes(4, framework="jax", machine="Other / Linux"))
    cand = frame(*processes(3, "c", seed=2), *processes(3, "c", framework="jax", machine="Other / Linux"),
                 row(framework="mlx"))
    result = gate.compare(base, cand)
    got = {(c.key["framework"], c.key["machine"], c.verdict) for c in result.cases}
    assert got == {("jax", MACHINE, "missing"), ("jax", "Other / Linux", "same"), ("mlx", MACHINE, "new"),
                   ("torch", MACHINE, "same")}


def test_baseline_machines_the_candidate_did_not_run_on_are_dropped():
    base = frame(*processes(4), *processes(4, machine="Apple M3 / Darwin arm64"))
    cand = frame(*processes(3, "c", seed=2))
    result = gate.compare(base, cand)
    assert [(c.key["machine"], c.verdict) for c in result.cases] == [(MACHINE, "same")]  # no "missing" for the Mac
    with pytest.raises(ResultsError, match="no rows for the candidate's machine .*make baseline"):
        gate.compare(frame(*processes(4, machine="Apple M3 / Darwin arm64")), cand)


def test_latency_is_never_compared_with_queued():
    base = frame(row(timing="queued"))
    cand = frame(row(timing="latency", seed=1))
    with pytest.raises(ResultsError, match="no case in common"):
        gate.compare(base, cand)


def test_explicit_metric_reads_its_own_samples():
    base = frame(*(row(run=f"b{i}", timing="latency", seed=i, queued_samples_s=samples(1e-3, seed=i)) for i in range(4)))
    cand = frame(*(row(run=f"c{i}", timing="latency", seed=9 + i, queued_samples_s=samples(1.5e-3, seed=9 + i))
                   for i in range(3)))
    assert verdicts(base, cand, metric="median_s") == {"torch fp32": "same"}
    assert verdicts(base, cand, metric="queued_median_s") == {"torch fp32": "slower"}


def test_error_row_without_backend_or_timing_still_matches_its_case():
    base = frame(*processes(4))
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
    over = dict(candidate_over)
    over.pop("seed", None)
    result = gate.compare(*sides(cand_over=over))
    assert [c.verdict for c in result.cases] == [verdict]
    assert result.exit_code == exit_code


def test_now_correct_and_not_measured_do_not_fail():
    base = frame(row(correct=False), row(framework="jax", status="unsupported"))
    cand = frame(*processes(3, "c"), row(framework="jax", status="unsupported"))
    result = gate.compare(base, cand)
    assert {c.key["framework"]: c.verdict for c in result.cases} == {"torch": "now correct", "jax": "not measured"}
    assert result.exit_code == 0


def test_slower_but_within_the_floor_is_same():
    assert verdicts(*sides(cand_over={"median": 1.03e-3}, spread=0.002)) == {"torch fp32": "same"}


def test_a_change_within_the_cases_own_noise_is_same_with_a_note():
    result = gate.compare(*sides(cand_over={"median": 1.12e-3}, spread=0.08))
    case = result.cases[0]
    assert case.verdict == "same" and "within this case's noise" in case.detail
    assert case.bar > 0.12


def test_too_few_samples_cannot_be_judged_and_exits_2():
    base = frame(*(row(run=f"b{i}", samples=[1e-3, 1e-3, 1e-3]) for i in range(4)))
    result = gate.compare(base, frame(*processes(3, "c")))
    assert [c.verdict for c in result.cases] == ["insufficient"]
    assert result.exit_code == 2


@pytest.mark.parametrize("n_base, n_cand", [(1, 3), (2, 3), (4, 1)])
def test_too_few_processes_cannot_be_judged_and_exits_2(n_base, n_cand):
    """One run has no between-process spread to judge by: fail closed, never a pass."""
    result = gate.compare(*sides(n_base=n_base, n_cand=n_cand))
    assert [c.verdict for c in result.cases] == ["insufficient"]
    assert "processes" in result.cases[0].detail and result.exit_code == 2


def test_each_case_states_what_it_can_detect_and_a_noisy_case_says_it_cannot_see_25_percent():
    quiet = processes(4, spread=0.005)
    noisy = processes(4, spread=0.25, seed=5, workload="sdpa", framework="jax")
    cand = processes(3, "c", spread=0.005, seed=2) + processes(3, "c", spread=0.25, seed=6, workload="sdpa", framework="jax")
    result = gate.compare(frame(*quiet, *noisy), frame(*cand))
    by = {c.key["workload"]: c for c in result.cases}
    assert by["matmul"].detectable < 0.10 and by["matmul"].bar < by["matmul"].detectable
    assert by["sdpa"].detectable > 0.25 and "too noisy to detect a 25% slowdown" in by["sdpa"].detail
    assert "1 of 2 cases detect a 10% slowdown" in result.headline and "1 too noisy to see 25%" in result.headline


def test_a_disturbed_process_on_either_side_does_not_raise_an_alarm():
    base = processes(4, spread=0.005)
    cand = processes(3, "c", spread=0.005, seed=2)
    cand[0] = row(run="c0", median=3e-3, seed=7)  # a neighbour held the core for one whole process
    assert verdicts(frame(*base), frame(*cand)) == {"torch fp32": "same"}


def test_a_flip_between_two_states_that_the_candidate_shows_is_not_a_slowdown():
    """A case whose processes settle into one of two states 12% apart, in a suite of 48: the
    baseline's four happened to land in the fast one. A candidate that scatters over both
    states shows the flip; a candidate whose every process is 12% slower is a shift."""
    quiet_base = [r for i in range(47) for r in processes(4, spread=0.002, seed=10 + i, workload=f"w{i}")]
    quiet_cand = [r for i in range(47) for r in processes(3, "c", spread=0.002, seed=100 + i, workload=f"w{i}")]
    base = processes(4, spread=0.002)
    flip = [row(run="c0", median=1.12e-3, seed=5), row(run="c1", median=1.0e-3, seed=6), row(run="c2", median=1.12e-3, seed=7)]
    shift = [row(run=f"c{i}", median=1.12e-3, seed=5 + i) for i in range(3)]
    flipped = gate.compare(frame(*base, *quiet_base), frame(*flip, *quiet_cand))
    shifted = gate.compare(frame(*base, *quiet_base), frame(*shift, *quiet_cand))
    assert flipped.exit_code == 0 and not flipped.by_verdict("slower", "faster")
    assert [c.key["workload"] for c in shifted.by_verdict("slower")] == ["matmul"] and shifted.exit_code == 1
    assert stats.pooled_sd([0.0, 0.0], [1.0, 1.0]) == 0.0  # a shift between the sides is not spread


# -- bad input: exit 2 with one line --------------------------------------------------------
def test_no_overlapping_cases_is_exit_2(tmp_path, capsys):
    a = write(tmp_path / "a.parquet", row())
    b = write(tmp_path / "b.parquet", row(workload="sdpa"))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "no case in common" in err and len(err.strip().splitlines()) == 1
    c = write(tmp_path / "c.parquet", row(machine="Elsewhere / Darwin arm64"))
    assert main(["compare", str(a), str(c)]) == 2
    err = capsys.readouterr().err
    assert "no rows for the candidate's machine" in err and len(err.strip().splitlines()) == 1


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
def write_runs(folder: Path, rows: list[dict]) -> Path:
    """One parquet file per run, as `bench run` writes them."""
    for run_id in dict.fromkeys(r["run_id"] for r in rows):
        write(folder / f"{run_id}.parquet", *(r for r in rows if r["run_id"] == run_id))
    return folder


def test_compare_cli_exit_codes_markdown_and_json(tmp_path):
    a = write_runs(tmp_path / "a", processes(4) + processes(4, framework="jax", seed=3))
    same = write_runs(tmp_path / "same", processes(3, "c", seed=2) + processes(3, "c", framework="jax", seed=4))
    slow = write_runs(tmp_path / "slow", processes(3, "c", seed=2) + processes(3, "c", framework="jax", median=1.3e-3, seed=4))
    assert main(["compare", str(a), str(same)]) == 0
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    assert main(["compare", str(a), str(slow), "--threshold", "10%", "--markdown", str(md), "--json", str(js)]) == 1
    text = md.read_text()
    assert "slower" in text and "jax/cpu matmul" in text and "Sensitivity:" in text
    doc = json.loads(js.read_text())
    assert doc["exit_code"] == 1 and doc["config"]["threshold"] == pytest.approx(0.10)
    assert {c["verdict"] for c in doc["cases"]} == {"slower", "same"}
    assert all(c["detectable"] > c["bar"] > 0 and c["baseline_runs"] == 4 for c in doc["cases"])


@pytest.mark.parametrize("command", ["compare", "ab", "baseline", "export"])
def test_each_gate_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and command in capsys.readouterr().out


def test_threshold_accepts_percent_and_fraction():
    assert gate.parse_threshold("5%") == pytest.approx(0.05)
    assert gate.parse_threshold("0.07") == pytest.approx(0.07)
    with pytest.raises(ValueError):
        gate.parse_threshold("-3%")


def test_baseline_is_written_per_machine_and_the_gate_reads_the_whole_folder(tmp_path):
    runs = write_runs(tmp_path / "runs", processes(4) + processes(4, "m", machine="Apple M3 / Darwin arm64"))
    assert main(["baseline", str(runs), "--dir", str(tmp_path / "baselines")]) == 0
    path = baseline_path(MACHINE, tmp_path / "baselines")
    assert path.name == f"{machine_slug(MACHINE)}.parquet"
    assert path.name.startswith("test-cpu-linux-x86-64-")  # readable slug, then a hash of the full name
    assert sorted(p.name for p in (tmp_path / "baselines").iterdir()) == sorted([
        baseline_path("Apple M3 / Darwin arm64").name, path.name])
    assert load_results([path])["run_id"].nunique() == 4
    cand = write_runs(tmp_path / "cand", processes(3, "c", seed=9))
    assert main(["compare", str(tmp_path / "baselines"), str(cand)]) == 0  # the Mac's baseline is not "missing"


def test_baseline_only_converts_stored_runs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["baseline"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["baseline", "--print-path"])


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
def test_hodges_lehmann_is_the_median_pairwise_shift_and_ignores_one_outlier():
    assert stats.hodges_lehmann([0.0, 1.0], [2.0, 3.0]) == pytest.approx(2.0)
    assert stats.hodges_lehmann([0.0, 0.01, -0.01, 0.0], [0.1, 0.1, 5.0]) == pytest.approx(0.1, abs=0.011)


def test_moderated_spread_borrows_from_the_group_but_never_shrinks_a_noisy_case():
    lucky = stats.moderated_spread(own_sd=0.001, own_df=3, prior=0.02, prior_df=4)
    assert 0.001 < lucky.sigma < 0.02 and lucky.df == 7
    noisy = stats.moderated_spread(own_sd=0.2, own_df=3, prior=0.02, prior_df=4)
    assert noisy.sigma == 0.2
    assert stats.prior_sd([0.01, 0.02, 0.5]) == pytest.approx(0.02)  # a bimodal case does not set the prior


def _sample_sds(rng: np.random.Generator, true_sds: np.ndarray, df: int) -> np.ndarray:
    """Sample SDs of cases with these true between-process SDs, from df + 1 processes each."""
    return true_sds * np.sqrt(rng.chisquare(df, true_sds.size) / df)


def test_alike_cases_lend_each_other_many_degrees_of_freedom_and_unlike_ones_few():
    """Four frameworks of 30 cases, 3 baseline processes each (2 df): one estimate is noisy,
    so the typical one over 21 baselines is checked, and each group keeps its own spread."""
    rng = np.random.default_rng(3)
    typical = {"torch": 0.01, "jax": 0.05, "tensorflow": 0.08, "mlx": 0.03}
    alike, unlike = [], []
    for _ in range(21):
        a = stats.fit_priors({fw: _sample_sds(rng, np.full(30, sd), 2) for fw, sd in typical.items()}, 2)
        u = stats.fit_priors({fw: _sample_sds(rng, sd * np.exp(rng.normal(0, 1.2, 30)), 2)
                              for fw, sd in typical.items()}, 2)
        assert len({p.df for p in a.values()}) == 1  # one worth for all groups
        alike.append(a)
        unlike.append(u)
    assert np.median([a["torch"].df for a in alike]) > 20
    assert np.median([u["torch"].df for u in unlike]) < 4
    for fw, sd in typical.items():
        assert np.median([a[fw].sd for a in alike]) == pytest.approx(sd, rel=0.2)


def test_too_few_spreads_fall_back_to_the_median_prior_with_4_degrees_of_freedom():
    priors = stats.fit_priors({"torch": [0.02, math.nan]}, 2)
    assert priors["torch"] == stats.Prior(0.02, 4.0)


def test_shift_test_bar_is_known_before_the_candidate_and_detectable_is_beyond_it():
    spread = stats.Spread(0.02, 7, 0.02)
    base = [0.0, 0.01, -0.01, 0.02]
    t1 = stats.shift_test(base, [0.0, 0.0, 0.0], spread, case_alpha=0.001)
    t2 = stats.shift_test(base, [0.5, 0.5, 0.5], spread, case_alpha=0.001)
    assert t1.critical == t2.critical and t1.detectable == t2.detectable > t1.critical
    assert t1.p_value > 0.5 > 1e-6 > t2.p_value and t2.ci_low < 0.5 < t2.ci_high
    floored = stats.shift_test(base, [0.0, 0.0, 0.0], spread, case_alpha=0.001, floor=1.0)
    assert floored.critical == 1.0


def _gate_run(rng: np.random.Generator, cases: list[tuple[str, float, bool]], factor: dict[int, float],
              n_base: int = 4, n_cand: int = 3):
    """Synthetic per-process figures for a suite, as make baseline + make gate produce them.

    Each case is (framework, between-process SD, bimodal). A bimodal case's processes settle
    into one of two states ±12% apart (what JAX and TensorFlow's small CPU calls do); a
    `factor` slows that case in the candidate. Within each process, 30 samples with 2% noise.
    """
    def side(name: str, n: int, slow: dict[int, float]) -> pd.DataFrame:
        rows = []
        for p in range(n):
            for i, (fw, sd, bimodal) in enumerate(cases):
                level = rng.normal(0, sd) + (rng.choice([-0.06, 0.06]) if bimodal else 0.0)
                s = list(1e-3 * (i + 1) * np.exp(level) * slow.get(i, 1.0) * np.exp(rng.normal(0, 0.02, 30)))
                rows.append(row(run=f"{name}{p}", framework=fw, workload=f"w{i}", samples=s))
        return frame(*rows)

    return side("b", n_base, {}), side("c", n_cand, factor)


def _suite(rng: np.random.Generator) -> list[tuple[str, float, bool]]:
    """48 cases over four frameworks: most between-process SDs of 0.5-3%, some bimodal."""
    cases = []
    for fw in ("torch", "tensorflow", "jax", "mlx"):
        for _ in range(12):
            cases.append((fw, float(rng.uniform(0.005, 0.03)), fw in ("jax", "tensorflow") and rng.random() < 0.3))
    return cases


def _index(case: gate.CaseResult) -> int:
    return int(case.key["workload"][1:])


def test_aa_whole_gate_red_in_at_most_5_percent_of_gate_runs():
    rng = np.random.default_rng(42)
    suite = _suite(rng)
    red = 0
    for _ in range(40):
        result = gate.compare(*_gate_run(rng, suite, {}))
        red += result.exit_code != 0
    assert red / 40 <= 0.05


def test_injected_slowdowns_are_caught_where_the_case_says_it_can_detect_them():
    rng = np.random.default_rng(7)
    suite = _suite(rng)
    hits = {1.25: [0, 0], 1.10: [0, 0]}  # caught, tried (cases stating <= 25% / <= 10%)
    for _ in range(10):
        for factor, limit in ((1.25, 0.25), (1.10, 0.10)):
            result = gate.compare(*_gate_run(rng, suite, {i: factor for i in range(len(suite))}))
            for c in result.judged:
                if c.detectable <= limit:
                    hits[factor][0] += c.verdict == "slower"
                    hits[factor][1] += 1
            assert not result.by_verdict("faster")
    assert hits[1.25][1] > 300 and hits[1.10][1] > 100
    assert hits[1.25][0] / hits[1.25][1] >= 0.90
    assert hits[1.10][0] / hits[1.10][1] >= 0.80


def test_a_case_with_1_percent_between_process_spread_states_it_detects_10_percent():
    """With 4 baseline and 3 candidate processes (make baseline + make gate) and a suite of 48."""
    rng = np.random.default_rng(11)
    result = gate.compare(*_gate_run(rng, [("torch", 0.01, False)] * 48, {}))
    assert np.median([c.detectable for c in result.judged]) <= 0.10


def test_a_slowdown_in_one_case_is_named_and_no_other():
    rng = np.random.default_rng(3)
    suite = _suite(rng)
    result = gate.compare(*_gate_run(rng, suite, {0: 1.30}))
    assert [_index(c) for c in result.by_verdict("slower")] == [0] and result.exit_code == 1


# -- interleaved A/B -------------------------------------------------------------------------
class FakeEnvironments:
    """Stands in for the runner: each call is one fresh process, its figures drawn (seeded)
    around the case's level; an interpreter path ending in 'slowed' makes torch 25% slower,
    as an extra op per call in a slowed framework would."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.calls: list[str] = []
        self.timings: set[tuple[str, ...]] = set()
        self.modes: set[str] = set()

    def __call__(self, config, cases, path: Path, run_id: str) -> None:
        self.calls.append(run_id)
        self.timings.add(tuple(config.timings))
        self.modes.update(case.mode for case in cases)
        rows = []
        for i, case in enumerate(cases):
            slow = 1.25 if config.pythons.get(case.framework, "").endswith("slowed") else 1.0
            level = 1e-3 * (i + 1) * slow * float(np.exp(self.rng.normal(0, 0.01)))
            rows.append(row(run=run_id, framework=case.framework, workload=case.workload, params=params_key(case.params),
                            samples=list(level * np.exp(self.rng.normal(0, 0.02, 30)))))
        write(path, *rows)


def _ab_sides(b_python: str) -> list[gate_ab.Side]:
    from bench.runner import RunConfig

    return [gate_ab.Side("a", RunConfig(pythons={"torch": "/envs/a/python"})),
            gate_ab.Side("b", RunConfig(pythons={"torch": b_python}))]


def _ab_cases():
    from bench.runner import Case

    return [Case(fw, wl, {}, "fp32") for fw in ("torch", "jax") for wl in ("matmul", "sdpa", "stream")]


def test_ab_alternates_fresh_processes_a_b_a_b(tmp_path):
    envs = FakeEnvironments(0)
    files = gate_ab.run_interleaved(_ab_sides("/envs/b/python"), _ab_cases(), 3, tmp_path, "t", run_once=envs)
    assert envs.calls == ["t-a-1", "t-b-1", "t-a-2", "t-b-2", "t-a-3", "t-b-3"]
    assert [p.name for p in files["a"]] == ["a-1.parquet", "a-2.parquet", "a-3.parquet"]
    with pytest.raises(ValueError):
        gate_ab.run_interleaved(_ab_sides("/envs/b/python"), _ab_cases(), 0, tmp_path, "t", run_once=envs)


def test_ab_identical_environments_raise_no_alarm_and_a_slowed_framework_is_caught(tmp_path):
    red = 0
    for trial in range(20):
        envs = FakeEnvironments(trial)
        files = gate_ab.run_interleaved(_ab_sides("/envs/b/python"), _ab_cases(), 4, tmp_path / f"aa{trial}", "t",
                                        run_once=envs)
        red += gate.compare_paths(files["a"], files["b"]).exit_code != 0
    assert red / 20 <= 0.05
    envs = FakeEnvironments(99)
    files = gate_ab.run_interleaved(_ab_sides("/envs/b/slowed"), _ab_cases(), 4, tmp_path / "slow", "t", run_once=envs)
    result = gate.compare_paths(files["a"], files["b"])
    assert {c.key["framework"] for c in result.by_verdict("slower")} == {"torch"}
    assert {c.key["framework"] for c in result.by_verdict("same")} == {"jax"}


def test_ab_command_runs_both_sides_and_writes_the_gate_outputs(tmp_path, monkeypatch):
    envs = FakeEnvironments(5)
    monkeypatch.setattr(gate_ab, "run_suite_once", envs)
    slowed = tmp_path / "slowed"
    slowed.write_text("#!/bin/sh\n")
    slowed.chmod(0o755)
    md, js = tmp_path / "ab.md", tmp_path / "ab.json"
    code = main(["ab", "--a", f"torch={sys.executable}", "--b", f"torch={slowed}", "-w", "matmul,sdpa", "-d", "fp32",
                 "--rounds", "4", "-o", str(tmp_path / "runs"), "--markdown", str(md), "--json", str(js)])
    assert code == 1
    assert [c.split("-", 3)[-1] for c in envs.calls] == ["a-1", "b-1", "a-2", "b-2", "a-3", "b-3", "a-4", "b-4"]
    doc = json.loads(js.read_text())
    assert {c["verdict"] for c in doc["cases"]} == {"slower"} and "slower" in md.read_text()
    assert all(c["key"]["framework"] == "torch" for c in doc["cases"])  # only the framework named in --a/--b
    assert envs.timings == {("queued",)}  # only the timing kind the verdicts read is measured


def test_ab_plans_every_mode_as_bench_run_does(tmp_path, monkeypatch):
    envs = FakeEnvironments(8)
    monkeypatch.setattr(gate_ab, "run_suite_once", envs)
    main(["ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "-w", "train_step", "-d", "bf16",
          "--rounds", "3", "-o", str(tmp_path / "runs")])
    assert envs.modes == {"eager", "compiled"}


def test_ab_measures_latency_only_when_the_verdicts_read_latency(tmp_path, monkeypatch):
    envs = FakeEnvironments(6)
    monkeypatch.setattr(gate_ab, "run_suite_once", envs)
    main(["ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "-w", "matmul", "-d", "fp32",
          "--rounds", "3", "-o", str(tmp_path / "runs"), "--metric", "latency_median_s"])
    assert envs.timings == {("latency",)}


def test_ab_rejects_a_missing_interpreter_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ab", "--a", "torch=/no/such/python", "--b", f"torch={sys.executable}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not an executable interpreter" in err and len(err.strip().splitlines()) == 1


# -- confirming alarms --------------------------------------------------------------------------
def test_every_quick_suite_case_can_be_run_again_with_exactly_its_parameters():
    from bench.catalog import parse_params
    from bench.catalog import format_params
    from workloads import WORKLOADS

    for name, workload in WORKLOADS.items():
        for params in workload.cases("quick"):
            assert parse_params(name, format_params(json.loads(params_key(params)))) == dict(params), name


def test_confirm_reruns_only_the_slower_cases_grouped_per_worker_run():
    from bench.confirm import confirm_runs

    def case(verdict: str, fw: str, params: str, dtype: str = "fp32") -> dict:
        return {"verdict": verdict, "key": {"framework": fw, "workload": "matmul", "params": params, "dtype": dtype,
                                            "mode": "eager"}}

    summary = {"cases": [case("slower", "torch", '{"k":64,"m":64,"n":64}'), case("same", "jax", '{"k":64,"m":64,"n":64}'),
                         case("slower", "torch", '{"k":256,"m":256,"n":256}'), case("slower", "mlx", '{"k":64,"m":64,"n":64}', "bf16"),
                         case("faster", "tensorflow", '{"k":64,"m":64,"n":64}')]}
    assert confirm_runs(summary) == [
        ["-f", "torch", "-w", "matmul", "-d", "fp32", "--mode", "eager", "-p", "k=64,m=64,n=64", "-p", "k=256,m=256,n=256"],
        ["-f", "mlx", "-w", "matmul", "-d", "bf16", "--mode", "eager", "-p", "k=64,m=64,n=64"],
    ]
    assert confirm_runs({"cases": [case("same", "torch", "{}")]}) == []


def test_a_slow_state_in_both_gate_processes_is_not_confirmed_and_a_real_slowdown_is():
    """Both candidate processes of one case caught in a slow state (+30%) make it `slower`; two
    confirming processes in the normal state take the alarm back, two slowed ones keep it."""
    base = processes(3, "b", seed=1)
    episode = processes(2, "c", seed=2, median=1.3e-3)
    assert verdicts(frame(*base), frame(*episode)) == {"torch fp32": "slower"}
    normal = [row(run=f"k{i}", median=1e-3 * m, seed=50 + i) for i, m in enumerate((1.004, 0.997))]
    assert verdicts(frame(*base), frame(*episode, *normal)) == {"torch fp32": "same"}
    slowed = [row(run=f"k{i}", median=1.3e-3 * m, seed=50 + i) for i, m in enumerate((1.004, 0.997))]
    assert verdicts(frame(*base), frame(*episode, *slowed)) == {"torch fp32": "slower"}


def test_confirm_command_runs_each_flagged_group_in_fresh_runs_into_the_gate_folder(tmp_path, monkeypatch):
    from bench import confirm

    calls: list[list[str]] = []
    monkeypatch.setattr(confirm.subprocess, "run", lambda cmd, **_: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"cases": [{"verdict": "slower", "key": {
        "framework": "torch", "workload": "stream", "params": '{"n":4194304}', "dtype": "fp32", "mode": "eager"}}]}))
    assert confirm.main([str(first), "--out", str(tmp_path), "--runs", "2", "--", "--threads", "1"]) == 0
    assert [c[c.index("--run-id") + 1] for c in calls] == ["confirm-1"]
    assert calls[0][calls[0].index("--processes") + 1] == "2"  # one run, its processes fresh workers
    assert all(c[c.index("-p") + 1] == "n=4194304" and c[c.index("--out") + 1] == str(tmp_path) and "--threads" in c
               for c in calls)
    assert confirm.main([str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2


def test_one_slow_process_of_four_does_not_widen_the_bar_but_a_split_between_states_does():
    assert stats.trimmed_pooled_sd([0.0, 0.01, -0.01], [0.22, 0.23, 0.6, 0.22]) == pytest.approx(
        stats.pooled_sd([0.0, 0.01, -0.01], [0.22, 0.23, 0.22]))
    assert stats.trimmed_pooled_sd([0.0, 0.0, 0.0], [0.0, 0.0, 0.11, 0.11]) > 0.04  # two of four: a flip shows
    assert stats.trimmed_pooled_sd([0.0, 0.0], [0.0, 0.11, 0.11]) == stats.pooled_sd([0.0, 0.0], [0.0, 0.11, 0.11])


def test_a_real_slowdown_stays_slower_when_one_confirming_process_is_in_a_slow_state():
    """25% slower in every candidate process, and one of the four also caught in a slow state
    (+45% more): the bar from both sides must not swallow the slowdown."""
    base = processes(3, "b", seed=1, spread=0.005)
    cand = [row(run=f"c{i}", median=1.25e-3 * m, seed=30 + i) for i, m in enumerate((1.0, 1.004, 1.45, 0.997))]
    assert verdicts(frame(*base), frame(*cand)) == {"torch fp32": "slower"}


def test_the_first_look_takes_the_bar_from_the_baseline_alone():
    """make gate's first look (--spread baseline) flags a two-state flip that the candidate's own
    scatter shows; the confirmation look, with the bar from both sides, does not."""
    base = processes(3, spread=0.002)
    flip = [row(run="c0", median=1.12e-3, seed=5), row(run="c1", median=1.0e-3, seed=6),
            row(run="c2", median=1.12e-3, seed=7), row(run="c3", median=1.0e-3, seed=8)]
    assert verdicts(frame(*base), frame(*flip), candidate_spread=False) == {"torch fp32": "slower"}
    assert verdicts(frame(*base), frame(*flip)) == {"torch fp32": "same"}


def test_an_estimated_prior_lends_alike_cases_more_than_unlike_ones():
    """GateConfig(prior_df=None): the prior's worth comes from the baseline; a suite whose cases
    are alike states smaller detectable slowdowns than one whose cases differ wildly."""
    rng = np.random.default_rng(11)
    alike = [("torch", 0.01, False)] * 40
    unlike = [("torch", float(0.01 * np.exp(rng.normal(0, 1.5))), False) for _ in range(40)]
    detects = {}
    for name, suite in (("alike", alike), ("unlike", unlike)):
        result = gate.compare(*_gate_run(rng, suite, {}), gate.GateConfig(prior_df=None))
        assert result.exit_code == 0
        detects[name] = np.median([c.detectable for c in result.judged])
    assert detects["alike"] < detects["unlike"]
