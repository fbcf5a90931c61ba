"""The second reliability audit's crashes, hangs and silences
(../shared/research/reliability-audit-2026-12-03.md), one test each: symlinks in results
folders, hostile parquet metadata, huge or odd inputs that used to be read or built before
they were checked, tracebacks, and comparisons of runs made with different settings.
Each test failed on the code before its fix (da39d1f)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.cli import main
from bench.results import load_results
from tests.test_reliability import edit, one_line_exit_2, row, write

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.parquet", row("torch", 1e-3), row("jax", 2e-3, seed=1))


def _loops(folder: Path) -> None:
    for link, target in (("x.parquet", "y.parquet"), ("y.parquet", "x.parquet"), ("self.parquet", "self.parquet"),
                         ("sub", "."), ("abs", str(folder))):
        (folder / link).symlink_to(target)


# symlinks in a results folder -------------------------------------------------------------
def test_symlink_loops_in_a_folder_are_skipped_with_warnings_by_the_report(good, tmp_path):
    """B23/N46: the report de-duplicated files with Path.resolve(), which raises on a loop."""
    from bench.report.data import load

    folder = tmp_path / "loop"
    folder.mkdir()
    write(folder / "good.parquet", row())
    _loops(folder)
    warnings: list[str] = []
    df = load([folder], warnings.append)
    assert len(df) == 1
    assert any("x.parquet" in w for w in warnings) and any("sub" in w and "read already" in w for w in warnings)


def test_symlink_loop_folder_renders_a_report(tmp_path, capsys):
    folder = tmp_path / "loop"
    folder.mkdir()
    write(folder / "good.parquet", row())
    _loops(folder)
    assert main(["report", str(folder), "-o", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "index.html").exists()


def test_symlinked_sub_folders_are_read_once(tmp_path, capsys):
    """N59/D38: rglob does not follow linked folders, so linked runs were left out silently."""
    elsewhere, results = tmp_path / "elsewhere", tmp_path / "results"
    elsewhere.mkdir()
    results.mkdir()
    write(elsewhere / "mac.parquet", row("torch", run_id="mac"))
    write(results / "local.parquet", row("jax", run_id="local"))
    (results / "mac").symlink_to(elsewhere)
    (results / "mac-again").symlink_to(elsewhere)  # a second link: read once, and said
    notes: list[str] = []
    df = load_results([results], warn=notes.append)
    assert sorted(df["run_id"]) == ["local", "mac"]
    assert any("mac-again" in n or "mac" in n for n in notes)
    from bench.report.data import load

    assert sorted(load([results], lambda _: None)["run_id"]) == ["local", "mac"]
    assert main(["show", str(results)]) == 0
    assert "mac" in capsys.readouterr().out


# hostile pandas metadata -----------------------------------------------------------------
@pytest.mark.parametrize("pandas_meta", [
    b"{not json",
    json.dumps({"index_columns": ["nope"], "columns": [], "column_indexes": []}).encode(),
    b"[1, 2]",
])
def test_hostile_pandas_metadata_is_ignored(good, tmp_path, capsys, pandas_meta):
    """N54/D25: to_pandas() parsed the file's `pandas` metadata; its errors were tracebacks."""
    meta = {**pq.read_table(good).schema.metadata, b"pandas": pandas_meta}
    bad = tmp_path / "pm.parquet"
    pq.write_table(pq.read_table(good).replace_schema_metadata(meta), bad)
    assert main(["show", str(bad)]) == 0
    assert "2 rows" in capsys.readouterr().out
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "run.parquet", row(run_id="other"))
    (folder / "pm.parquet").write_bytes(bad.read_bytes())
    assert len(load_results([folder], warn=lambda _: None)) == 3


# a column name twice --------------------------------------------------------------------------
def test_a_column_named_twice_is_one_line_in_every_reader(good, tmp_path, capsys):
    """N53: pq.read_table refused such a file; read through pq.ParquetFile (faster over 2,000
    files) it was read, and the schema check's field lookup raised a raw KeyError: a
    traceback in show, report, baseline, export and compare."""
    import pyarrow as pa

    table = pq.read_table(good)
    dup = tmp_path / "dup.parquet"
    pq.write_table(table.append_column(pa.field("framework", pa.string()), pa.array(["x"] * table.num_rows)), dup)
    for argv in (["show", str(dup)], ["report", str(dup), "-o", str(tmp_path / "rep")],
                 ["baseline", str(dup), "--dir", str(tmp_path / "bl")],
                 ["export", "--pytest-benchmark", str(tmp_path / "x.json"), str(dup)], ["compare", str(good), str(dup)]):
        one_line_exit_2(capsys, argv, "column framework appears 2 times")


# --cpus ------------------------------------------------------------------------------------
def test_a_huge_cpu_range_is_refused_without_building_it():
    """N1/D26: `--cpus 0-100000000` built a 10^8-element set (3 GiB) while parsing. Here a
    range of 3·10^6 CPUs: the old parser's set alone took > 100 MB before it refused."""
    import argparse

    from bench.argtypes import cpu_list

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("binding to CPUs needs sched_setaffinity")
    tracemalloc.start()
    try:
        with pytest.raises(argparse.ArgumentTypeError, match="not one this process may use"):
            cpu_list("0-3000000")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak
    assert cpu_list(str(min(os.sched_getaffinity(0)))) == (min(os.sched_getaffinity(0)),)


# -p data=FILE ------------------------------------------------------------------------------
def test_a_data_file_counts_in_the_memory_preflight(tmp_path):
    """N13/D27: the worker holds about 10 bytes per byte of a `data=` corpus; the estimate
    ignored the file, so a 2 GB file passed and the worker was OOM-killed."""
    from bench.preflight import check_memory
    from bench.runner import Case

    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:
        fh.truncate(2 * 2**30)  # sparse: no disk used
    params = {"layers": 2, "d_model": 64, "heads": 4, "seq": 32, "batch": 8, "steps": 8, "lr": 0.001, "data": str(big)}
    case = Case("torch", "train_step", params, "bf16")
    with pytest.raises(ValueError, match="--force-memory"):
        check_memory([case], "cpu", available=8 * 2**30)
    check_memory([Case("torch", "train_step", {**params, "data": "builtin"}, "bf16")], "cpu", available=8 * 2**30)


# tracebacks --------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [("rope_theta", None), ("rms_norm_eps", [1e-6]), ("rope_theta", "1e4")])
def test_model_config_float_fields_of_the_wrong_type_are_one_line(tmp_path, capsys, key, value):
    """N14/D30: `"rope_theta": null` reached float() in the CLI: a TypeError traceback."""
    cfg = {"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 64,
           "vocab_size": 64, key: value}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    one_line_exit_2(capsys, ["run", "-f", "torch", "-w", "generate", "-d", "fp32", "--model", str(tmp_path)], key)


@pytest.mark.parametrize("summary", [
    "[]",
    '{"cases": [{"verdict": "slower"}]}',
    '{"cases": [{"verdict": "slower", "key": {"framework": "torch", "workload": "matmul", "dtype": "fp32", '
    '"params": "{not json"}}]}',
    '{"cases": "all"}',
])
def test_confirm_on_a_malformed_summary_is_one_line(tmp_path, capsys, summary):
    """N34/D30: a JSON list, a case without `key`, params that are not JSON: tracebacks."""
    from bench import confirm

    path = tmp_path / "s.json"
    path.write_text(summary)
    assert confirm.main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot read" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["report", "ab", "compare", "show"])
def test_ctrl_c_in_any_command_is_one_line_and_130(monkeypatch, capsys, command):
    """N49/N32/D30: Ctrl-C during `bench report` or `bench ab` ended in a traceback."""
    from bench import cli

    def interrupted(args, console):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, command, interrupted)
    argv = {"report": ["report", "x"], "ab": ["ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}"],
            "compare": ["compare", "a", "b"], "show": ["show", "x"]}[command]
    try:
        code = main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped bench's main (a traceback for the user)")
    assert code == 130
    err = capsys.readouterr().err
    assert err.strip() == f"bench {command}: interrupted"


def test_ctrl_c_while_the_command_loads_is_one_line_and_130():
    """N49: under load `bench` spends seconds importing pandas and pyarrow; Ctrl-C then was a
    KeyboardInterrupt traceback from inside them. Here SIGINT arrives as pandas is imported."""
    # A shell starts background jobs with SIGINT ignored, and Python keeps that; a user's terminal
    # delivers it. The first line gives the child what a terminal-started `bench` has.
    code = ("import builtins, os, signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n_imp = builtins.__import__\n"
            "def hook(name, *a, **k):\n    if name == 'pandas':\n        os.kill(os.getpid(), signal.SIGINT)\n"
            "    return _imp(name, *a, **k)\nbuiltins.__import__ = hook\n"
            "from bench.cli import main\nraise SystemExit(main(['list']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 130 and done.stderr.strip() == "bench: interrupted", done.stderr[-500:]


def test_ctrl_c_while_a_worker_starts_kills_it(tmp_path, monkeypatch):
    """N32: the worker that was starting when Ctrl-C came ran on in its own session."""
    from bench import runner as runner_module
    from bench.results import ResultsWriter
    from bench.runner import Case, Runner, RunConfig
    from tests.helpers import FAKE

    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    started: list[runner_module.WorkerProcess] = []
    real_init = runner_module.WorkerProcess.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)

    def receive(self, timeout_s, what):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module.WorkerProcess, "__init__", init)
    monkeypatch.setattr(runner_module.WorkerProcess, "receive", receive)
    run = Runner(RunConfig(pythons={"fake": str(slow)}), ResultsWriter(tmp_path / "r" / "x.parquet"), "x",
                 frameworks={"fake": FAKE})
    with pytest.raises(KeyboardInterrupt):
        run.run([Case("fake", "matmul", {"m": 8, "n": 8, "k": 8}, "fp32")])
    assert started and all(w.proc.poll() is not None for w in started)


# a FIFO where a config belongs ---------------------------------------------------------------
def test_model_config_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    """N17/D31: open() on a FIFO blocks until a writer comes: `bench run` hung before any work."""
    os.mkfifo(tmp_path / "config.json")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run([sys.executable, "-m", "bench", "run", "-f", "torch", "-w", "generate", "-d", "fp32",
                               "--model", str(tmp_path), "-o", str(tmp_path / "r")], capture_output=True, text=True,
                              env=env, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("bench run waited on the FIFO")
    assert done.returncode == 2 and "FIFO" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# bench ab checks up front --------------------------------------------------------------------
def test_ab_with_fewer_rounds_than_the_gate_needs_is_refused_before_any_work(capsys, monkeypatch):
    """N30/D36: --rounds 2 ran both rounds and then could only say CANNOT JUDGE."""
    from bench import ab

    monkeypatch.setattr(ab, "run_interleaved", lambda *a, **k: pytest.fail("ran rounds"))
    with pytest.raises(SystemExit) as exc:
        main(["ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "-w", "stream", "--rounds", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "at least 3 rounds" in err and len(err.strip().splitlines()) == 1


def test_ab_into_a_folder_holding_one_of_its_files_is_refused_before_round_one(tmp_path, capsys, monkeypatch):
    """N31/D36: an existing a-2.parquet failed after round 1, naming --run-id, which ab lacks."""
    from bench import ab

    monkeypatch.setattr(ab, "run_interleaved", lambda *a, **k: pytest.fail("ran rounds"))
    out = tmp_path / "ab"
    out.mkdir()
    (out / "a-2.parquet").write_text("someone else's")
    err = one_line_exit_2(capsys, ["ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}",
                                   "-w", "stream", "-d", "fp32", "--rounds", "3", "-o", str(out)], "a-2.parquet")
    assert "--run-id" not in err and (out / "a-2.parquet").read_text() == "someone else's"


# settings that differ between the sides ------------------------------------------------------
def test_compare_says_when_the_sides_ran_with_different_threads_or_cpus(tmp_path, capsys):
    """N62/D39: a 1-thread baseline against a 2-thread candidate was judged without a word."""
    base = [write(tmp_path / f"b{i}.parquet", row(run_id=f"b{i}", seed=i, threads=1)) for i in range(3)]
    cand = [write(tmp_path / f"c{i}.parquet", row(run_id=f"c{i}", seed=10 + i, threads=2, cpus="0")) for i in range(2)]
    js = tmp_path / "s.json"
    code = main(["compare", str(base[0]), *map(str, cand), "--json", str(js)])
    out = capsys.readouterr().out
    assert code in (0, 1, 2)
    assert "threads 1" in out and "with 2" in out and "not like with like" in out
    notes = json.loads(js.read_text())["notes"]
    assert any("threads" in n for n in notes) and any("CPUs" in n for n in notes)
    same = [write(tmp_path / f"s{i}.parquet", row(run_id=f"s{i}", seed=20 + i, threads=1)) for i in range(2)]
    main(["compare", str(base[0]), *map(str, same)])
    assert "not like with like" not in capsys.readouterr().out


# the audit's own re-run script -----------------------------------------------------------------
def test_the_audit_script_starts_and_knows_every_case_of_both_audits():
    """N63/D41: scripts/reliability_audit.py died with an ImportError before its first case."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "reliability_audit.py"), "--list"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    ids = [i for i in ids if i != "#"]
    assert len(ids) == len(set(ids)) == 185
    assert {"A1", "A71", "B25", "C11", "S11", "E4", "N1", "N63"} <= set(ids)


# nothing measured, nothing passed ------------------------------------------------------------
def test_a_comparison_where_nothing_was_measured_cannot_pass(tmp_path, capsys):
    """N29/D21: error rows on both sides (two broken environments) gave `PASS: 1 not measured`."""
    failing = {"status": "error", "reason": "worker died while starting torch", "samples_s": None, "median_s": None,
               "queued_samples_s": None, "queued_median_s": None, "latency_samples_s": None, "latency_median_s": None}
    base = [write(tmp_path / f"a{i}.parquet", row(run_id=f"a{i}", **failing)) for i in range(3)]
    cand = [write(tmp_path / f"b{i}.parquet", row(run_id=f"b{i}", **failing)) for i in range(2)]
    md = tmp_path / "s.md"
    code = main(["compare", str(base[0]), *map(str, cand), "--markdown", str(md)])
    captured = capsys.readouterr()
    assert code == 2 and "PASS" not in md.read_text() and "CANNOT JUDGE" in captured.out
    assert len(captured.err.strip().splitlines()) == 1
