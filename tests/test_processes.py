"""The process is the unit: each process counted once, a case's figure over its processes,
"≈" where intervals overlap, and --processes in `bench run` (fixed seeds; no timing asserts)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import stats
from bench.cli import main
from bench.gate.baseline import write_baselines
from bench.plan import Case, interleave
from bench.processes import count_processes, dedupe, headline, process_label, with_process
from bench.results import ResultsWriter, load_results, read_results
from bench.summary import rank
from tests.test_compare import row

SMALL = {"m": 8, "n": 8, "k": 8}


# -- statistics over processes -------------------------------------------------------------
def test_one_process_has_no_interval_and_says_so():
    s = stats.summarize_processes([2e-3])
    assert s.n == 1 and s.median == 2e-3 and not s.has_interval
    assert math.isnan(s.low) and math.isnan(s.high)
    assert process_label(pd.Series({"n_processes": 1, "processes_run": 1})) == "1 (no interval)"


@pytest.mark.parametrize("n", [3, 5, 8])
def test_between_process_interval_covers_the_true_median_at_least_about_95_percent(n):
    rng = np.random.default_rng(n)
    hits, trials = 0, 3000
    for _ in range(trials):
        lo, hi = stats.process_interval(np.exp(rng.normal(0.0, 0.2, n)))  # true median exp(0) = 1
        hits += lo <= 1.0 <= hi
    assert hits / trials >= 0.93


def test_interval_is_never_narrower_than_the_order_statistic_interval():
    x = [1.0, 1.0, 1.0, 1.0, 1.0, 1.01, 5.0, 9.0]  # two processes in a slow state
    lo, hi = stats.process_interval(x)
    os_lo, os_hi = stats.median_ci(x)
    assert lo <= os_lo and hi >= os_hi


def test_dead_processes_are_not_figures():
    s = stats.summarize_processes([1.0, math.nan, 0.0, 1.2, 1.1])
    assert s.n == 3 and s.median == pytest.approx(1.1)


def test_intervals_overlap_only_when_both_are_known():
    assert stats.intervals_overlap(1, 2, 1.5, 3)
    assert not stats.intervals_overlap(1, 2, 2.5, 3)
    assert not stats.intervals_overlap(1, 2, math.nan, 3)
    assert not stats.intervals_overlap(None, 2, 1, 3)


# -- identity and counting once -------------------------------------------------------------
def test_a_row_without_the_process_column_is_process_zero():
    df = with_process(pd.DataFrame([{"run_id": "r", "framework": "torch"}]))
    assert df["process"].tolist() == [0]
    assert with_process(pd.DataFrame({"run_id": ["r"], "framework": ["t"], "process": [None]}))["process"].tolist() == [0]


def _write(path: Path, rows: list[dict]) -> Path:
    w = ResultsWriter(path)
    for r in rows:
        w.append(r)
    return path


def _old_file(path: Path, rows: list[dict]) -> Path:
    """A results file as written before the process column existed."""
    _write(path, rows)
    table = pq.read_table(path)
    table = table.drop_columns(["process", "compile_cache"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(table, path)
    return path


def test_old_result_files_read_as_one_process_per_run(tmp_path):
    path = _old_file(tmp_path / "old.parquet", [row(run="old", seed=1)])
    assert "process" not in pq.read_schema(path).names
    df = load_results([path])
    assert df["process"].tolist() == [0] and count_processes(df) == 1


def test_a_run_given_three_times_counts_once(tmp_path):
    path = _write(tmp_path / "r.parquet", [row(run="r", process=p, seed=p) for p in range(2)])
    df = load_results([path, path, tmp_path])
    assert len(df) == 2 and count_processes(df) == 2


def test_rows_of_one_file_are_all_kept_even_when_alike():
    df = pd.DataFrame([row(run="r"), row(run="r")]).assign(source="a.parquet")
    assert len(dedupe(df)) == 2


def test_a_report_copy_inside_the_results_folder_adds_no_rows(tmp_path):
    results = tmp_path / "results"
    _write(results / "a.parquet", [row(run="a", process=p, seed=p) for p in range(3)])
    (results / "report" / "data").mkdir(parents=True)
    (results / "report" / "data" / "a.parquet").write_bytes((results / "a.parquet").read_bytes())
    warnings: list[str] = []
    df = load_results([results], warn=warnings.append)
    assert len(df) == 3
    assert warnings and "counted once" in warnings[0]


def test_re_baselining_a_folder_that_holds_its_own_baselines_does_not_grow(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "base.parquet", [row(run="base", process=p, seed=p) for p in range(3)])
    sizes = []
    for _ in range(3):
        [path] = write_baselines([runs], runs / "baselines")
        sizes.append((len(read_results(path)), count_processes(read_results(path))))
    assert sizes == [(3, 3)] * 3


def test_a_baseline_from_one_run_given_three_times_cannot_judge(tmp_path, capsys):
    r = _write(tmp_path / "r.parquet", [row(run="r", seed=1)])
    c = _write(tmp_path / "c.parquet", [row(run="c", seed=2, median=1.2e-3)])
    assert main(["baseline", str(r), str(r), str(r), "--dir", str(tmp_path / "bl")]) == 0
    assert main(["compare", str(tmp_path / "bl"), str(c), str(c)]) == 2
    assert "CANNOT JUDGE" in capsys.readouterr().out


def test_one_run_of_several_processes_is_enough_for_the_gate(tmp_path, capsys):
    rng = np.random.default_rng(3)
    base = _write(tmp_path / "b.parquet", [row(run="b", process=p, median=1e-3 * math.exp(rng.normal(0, 0.01)), seed=p)
                                           for p in range(4)])
    cand = _write(tmp_path / "c.parquet", [row(run="c", process=p, median=1e-3 * math.exp(rng.normal(0, 0.01)), seed=10 + p)
                                           for p in range(3)])
    assert main(["compare", str(base), str(cand)]) == 0
    assert "PASS" in capsys.readouterr().out


# -- the headline of a case over its processes ------------------------------------------------
def test_headline_is_the_median_of_per_process_figures_with_an_interval():
    df = pd.DataFrame([row(run="r", process=p, median=m, seed=p) for p, m in enumerate([1e-3, 1.1e-3, 1.3e-3])])
    df["median_s"] = [1e-3, 1.1e-3, 1.3e-3]
    [h] = headline(df).to_dict("records")
    assert h["median_s"] == pytest.approx(1.1e-3)
    assert h["n_processes"] == 3 and h["processes_run"] == 3
    assert h["process_low_s"] < 1.1e-3 < h["process_high_s"]


def test_a_process_that_died_costs_only_its_row_and_the_row_says_how_many_stand_behind_it():
    rows = [row(run="r", process=p, seed=p) for p in range(3)]
    rows[1] = {**rows[1], "status": "error", "reason": "worker died while running (killed by SIGKILL)",
               "median_s": None, "samples_s": None}
    [h] = headline(pd.DataFrame(rows)).to_dict("records")
    assert h["status"] == "ok" and h["n_processes"] == 2 and h["processes_run"] == 3
    assert "2 of 3 processes" in h["reason"] and "SIGKILL" in h["reason"]


def test_runs_are_never_pooled_into_one_figure():
    df = pd.DataFrame([row(run="a", process=0), row(run="b", process=0, seed=1)])
    assert len(headline(df)) == 2


def test_overlapping_intervals_are_a_tie_and_disjoint_ones_rank():
    def case(framework: str, figures: list[float]) -> list[dict]:
        return [{**row(run="r", framework=framework, process=p, seed=p), "median_s": f} for p, f in enumerate(figures)]

    close = headline(pd.DataFrame(case("torch", [1.0e-3, 1.05e-3, 1.1e-3]) + case("jax", [1.02e-3, 1.08e-3, 1.12e-3])))
    ranked = rank(close)
    assert ranked["tie"].all()
    apart = headline(pd.DataFrame(case("torch", [1.0e-3, 1.01e-3, 1.02e-3]) + case("jax", [2.0e-3, 2.02e-3, 2.04e-3])))
    ranked = rank(apart)
    assert not ranked["tie"].any() and sorted(ranked["rank"].tolist()) == [1, 2]


def test_single_process_rows_are_never_called_a_tie_but_say_they_stand_on_one():
    ranked = rank(headline(pd.DataFrame([row(run="r", framework="torch"), row(run="r", framework="jax", seed=1)])))
    assert not ranked["tie"].any()
    assert set(map(process_label, (r for _, r in ranked.iterrows()))) == {"1 (no interval)"}


# -- running processes ---------------------------------------------------------------------
def test_processes_are_interleaved_across_frameworks():
    cases = [Case("a", "matmul", SMALL, "fp32"), Case("a", "stream", {"n": 8}, "fp32"), Case("b", "matmul", SMALL, "fp32")]
    order = [(c.framework, c.process, c.workload) for c in interleave(cases, 2)]
    assert order == [("a", 0, "matmul"), ("a", 0, "stream"), ("b", 0, "matmul"),
                     ("a", 1, "matmul"), ("a", 1, "stream"), ("b", 1, "matmul")]


@pytest.mark.integration
def test_each_process_index_is_a_fresh_worker_and_every_row_says_which(run_cases, tmp_path):
    rows, path = run_cases(interleave([Case("fake", "matmul", SMALL, "fp32")], 3))
    assert [r["process"] for r in rows] == [0, 1, 2]
    assert read_results(path)["process"].tolist() == [0, 1, 2]
    log = (tmp_path / "results" / "run.logs" / "fake.log").read_text()
    assert log.count("worker fake exiting") == 3
    assert all(r["compile_cache"] for r in rows)


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "three", "101", "100000000000"])
def test_bad_process_counts_are_one_line_and_exit_2(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["run", "-f", "torch", "-w", "stream", "--processes", value, "-o", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "from 1 to 100" in err[0]
    assert not any(tmp_path.iterdir())



# -- make baseline / make gate read only the files they wrote --------------------------------
def _fake_venv(tmp_path: Path) -> Path:
    """A VENV whose bench records its arguments and writes the file a run would write."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    bench = venv / "bin" / "bench"
    bench.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n'
                     'out=""; id=""; while [ $# -gt 0 ]; do case "$1" in --out) out=$2;; --run-id) id=$2;; esac; shift; done\n'
                     '[ -n "$out" ] && mkdir -p "$out" && touch "$out/$id.parquet"\nexit 0\n')
    bench.chmod(0o755)
    return venv


def _make(target: str, tmp_path: Path, **variables: str) -> "subprocess.CompletedProcess[str]":
    import subprocess

    from bench.machine import REPO_ROOT

    venv = _fake_venv(tmp_path)
    args = ["make", "--no-print-directory", "-f", str(REPO_ROOT / "Makefile"), target, f"VENV={venv}", "FRAMEWORK_VENVS=",
            *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("target, folder_var", [("baseline", "BASELINE_RUNS_DIR"), ("gate", "GATE_DIR")])
def test_a_folder_holding_any_other_results_file_is_refused(target, folder_var, tmp_path):
    folder = tmp_path / "runs"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "old-experiment.parquet").touch()
    done = _make(target, tmp_path, **{folder_var: str(folder)})
    assert done.returncode == 2 and "already holds results files" in done.stdout
    assert not (tmp_path / "venv" / "bin" / "calls").exists()  # nothing ran


def test_make_baseline_is_one_run_of_several_processes_and_reads_only_that_file(tmp_path):
    folder = tmp_path / "runs"
    done = _make("baseline", tmp_path, BASELINE_RUNS_DIR=str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    run, baseline = (tmp_path / "venv" / "bin" / "calls").read_text().splitlines()
    assert "--processes 3" in run
    run_id = run.split("--run-id ")[1].split()[0]
    assert run_id.startswith("baseline-") and baseline == f"baseline {folder}/{run_id}.parquet"


def test_two_runs_that_share_a_run_id_are_not_copies_of_each_other(tmp_path):
    from datetime import datetime, timezone

    a = _write(tmp_path / "a" / "r.parquet", [row(run="r", seed=1, timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc))])
    b = _write(tmp_path / "b" / "r.parquet", [row(run="r", seed=2, timestamp=datetime(2026, 12, 2, tzinfo=timezone.utc))])
    assert len(load_results([a, b])) == 2


def test_a_process_starts_each_worker_environment_once():
    cases = [Case("m", "matmul", SMALL, d) for d in ("fp32", "tf32", "bf16", "tf32")]
    order = interleave(cases, 2, environment=lambda c: c.dtype == "tf32")
    assert [c.dtype for c in order] == ["fp32", "bf16", "tf32", "tf32"] * 2


def test_a_run_shares_one_jax_compile_cache_unless_the_user_set_one(monkeypatch, tmp_path):
    from bench import runner as runner_module
    from bench.catalog import FRAMEWORKS
    from bench.runner import RunConfig, WorkerLost, WorkerProcess

    seen: list[dict] = []

    def popen(cmd, env, **_):
        seen.append(env)
        raise OSError("not started")

    monkeypatch.setattr(runner_module.subprocess, "Popen", popen)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    for config in (RunConfig(compile_cache_dir=tmp_path / "cc"), RunConfig()):
        with pytest.raises(WorkerLost):
            WorkerProcess(FRAMEWORKS["jax"], {}, config, tmp_path / "log")
    assert seen[0]["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "cc" / "jax")
    assert "JAX_COMPILATION_CACHE_DIR" not in seen[1]
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/mine")
    with pytest.raises(WorkerLost):
        WorkerProcess(FRAMEWORKS["jax"], {}, RunConfig(compile_cache_dir=tmp_path / "cc"), tmp_path / "log")
    assert seen[2]["JAX_COMPILATION_CACHE_DIR"] == "/mine"
