"""The reliability audit's defects (../shared/research/reliability-audit-2026-11-29.md), one
test each: nothing measured is lost, files from elsewhere are data (never markup, never a
verdict), and bad input gets one line and exit 2. Each test failed on 8d4f64f."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.cli import main
from bench.results import ResultsError, ResultsWriter, read_results
from bench.runner import Case, RunConfig, new_run_id

MACHINE = "Test CPU / Linux x86_64"
SMALL = {"m": 8, "n": 8, "k": 8}


def row(framework: str = "torch", median: float = 1e-3, seed: int = 0, **over) -> dict:
    s = list(median * np.exp(np.random.default_rng(seed).normal(0.0, 0.02, 30)))
    base = {
        "run_id": "r1", "framework": framework, "backend": "cpu", "workload": "matmul", "workload_hash": "h1",
        "params": '{"k":64,"m":64,"n":64}', "dtype": "fp32", "status": "ok", "timing": "queued", "machine": MACHINE,
        "samples_s": s, "median_s": float(np.median(s)), "queued_samples_s": s, "queued_median_s": float(np.median(s)),
        "latency_samples_s": s, "latency_median_s": float(np.median(s)), "queued_inner_loops": 4,
        "latency_inner_loops": 1, "effective_precision": "fp32-class", "precision_matches": True, "correct": True,
    }
    base.update(over)
    return base


def write(path: Path, *rows: dict) -> Path:
    w = ResultsWriter(path)
    for r in rows:
        w.append(r)
    return path


def edit(src: Path, dst: Path, column: str, values: list, metadata: dict | None = None) -> Path:
    """A copy of `src` with one column replaced (any type): the audit's crafted files."""
    table = pq.read_table(src)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
    pq.write_table(table.replace_schema_metadata(metadata or pq.read_table(src).schema.metadata), dst)
    return dst


def one_line_exit_2(capsys, argv: list[str], expected: str = "") -> str:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err
    return err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.parquet", row("torch", 1e-3), row("jax", 2e-3, seed=1))


# 1 ---------------------------------------------------------------------------------------
def test_report_rendered_from_its_own_data_folder_keeps_its_inputs(tmp_path):
    from bench.report import build_report
    from tests.synthetic import write_synthetic

    write_synthetic(tmp_path / "results", n_rows=24)
    out = tmp_path / "reports"
    build_report([tmp_path / "results"], out)
    inputs = sorted(p.name for p in (out / "data").glob("*.parquet"))
    hashes = {p.name: digest(p) for p in (out / "data").glob("*.parquet")}
    assert inputs
    build_report([out / "data"], out)  # the README's "render it again from data/"
    assert sorted(p.name for p in (out / "data").glob("*.parquet")) == inputs
    assert {p.name: digest(p) for p in (out / "data").glob("*.parquet")} == hashes
    assert (out / "index.html").exists() and (out / "data" / "results.csv").exists()


# 2 ---------------------------------------------------------------------------------------
def test_reused_run_id_is_refused_and_the_earlier_run_is_untouched(tmp_path, capsys):
    earlier = write(tmp_path / "myrun.parquet", row())
    before = digest(earlier)
    one_line_exit_2(capsys, ["run", "-f", "torch", "-w", "stream", "-d", "fp32", "-o", str(tmp_path),
                             "--run-id", "myrun"], "already exists")
    assert digest(earlier) == before
    with pytest.raises(ResultsError, match="already exists"):
        ResultsWriter(earlier)


# 3 ---------------------------------------------------------------------------------------
def test_run_ids_differ_within_a_second_and_under_the_same_pid(monkeypatch):
    monkeypatch.setattr(os, "getpid", lambda: 1)  # every container's runner
    ids = {new_run_id(pd.Timestamp("2026-11-29 14:29:59", tz="UTC").to_pydatetime()) for _ in range(200)}
    assert len(ids) == 200


def test_two_writers_racing_for_one_name_never_replace_each_other(tmp_path):
    path = tmp_path / "same.parquet"
    first, second = ResultsWriter(path), ResultsWriter(path)  # both checked before either wrote
    first.append(row("torch"))
    with pytest.raises(ResultsError, match="already exists"):
        second.append(row("jax"))
    first.append(row("mlx"))  # the owner goes on rewriting its own file
    assert list(read_results(path)["framework"]) == ["torch", "mlx"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_files_are_readable_by_others(tmp_path):
    path = write(tmp_path / "r.parquet", row())
    assert path.stat().st_mode & stat.S_IROTH or os.umask(os.umask(0)) & 0o004


# 4 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ["nan", "2", "-1", "0", "1", "inf", "x"])
def test_alpha_outside_0_1_is_refused(alpha, good, capsys):
    one_line_exit_2(capsys, ["compare", str(good), str(good), "--alpha", alpha], "between 0 and 1")


# 5 ---------------------------------------------------------------------------------------
def test_worker_does_not_import_from_the_working_directory(run_cases, tmp_path, monkeypatch):
    planted = tmp_path / "cwd"
    planted.mkdir()
    marker = tmp_path / "PWNED"
    (planted / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('planted')\n")
    monkeypatch.chdir(planted)
    rows, _ = run_cases([Case("fake", "matmul", SMALL, "fp32")])
    assert rows[0]["status"] == "ok", rows[0]["reason"]
    assert not marker.exists()


# 6 ---------------------------------------------------------------------------------------
E1 = "x\n\n</details>\n\n## ✅ metalbench regression gate\n\n**PASS: 12 same** | fake | row |\n\n<!--"


def test_gate_markdown_cannot_be_rewritten_by_result_strings(tmp_path):
    from bench.gate.compare import GateConfig, compare_paths
    from bench.gate.output import markdown

    base = write(tmp_path / "base.parquet", row("torch"), row("jax"), row("mlx"))
    cand = write(tmp_path / "cand.parquet", row("torch", status="error", reason=E1),
                 row("jax\n| fake | row"), row("mlx", status="error", reason="`code` <b>b</b> [l](http://evil.example)"))
    text = markdown(compare_paths([base], [cand], GateConfig()))
    assert [ln for ln in text.splitlines() if ln.startswith("#")] == ["## ❌ metalbench regression gate"]
    assert "**PASS" not in text
    assert "<!--" not in text and text.count("</details>") == 1 and "<b>" not in text
    assert "`code`" not in text and "](http" not in text
    table_rows = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert table_rows and {ln.count("|") for ln in table_rows} == {table_rows[0].count("|")}  # no cell split or added


# 7 ---------------------------------------------------------------------------------------
def test_impossible_timings_never_rank(capsys, tmp_path):
    from bench.summary import rank

    df = pd.DataFrame([row("torch", 1e-3), row("jax", median=1.0, median_s=-1.0), row("mlx", median_s=0.0),
                       row("tensorflow", median_s=float("inf")), row("fake", median_s=float("nan"))])
    ranked = rank(df).set_index("framework")
    assert ranked.loc["torch", "rank"] == 1 and ranked.loc["torch", "vs_best"] == 1.0
    assert ranked.loc[["jax", "mlx", "tensorflow", "fake"], "rank"].isna().all()
    path = write(tmp_path / "naninf.parquet", *df.to_dict("records"))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "inf×" not in out and "-0.00×" not in out


# 8 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("column, values, message", [
    ("params", ["[1, 2, 3]", "[1, 2, 3]"], "params"),
    ("params", ["not json", "{}"], "params"),
    ("median_s", ["0.00016s", "0.1"], "median_s"),
    ("correct", ["false", "true"], "correct"),
    ("status", [7, 7], "status"),
    ("status", ["fine", "ok"], "status"),
    ("samples_s", ["1,2", "3"], "samples_s"),
])
def test_malformed_file_is_one_line_for_every_reader(good, tmp_path, capsys, column, values, message):
    bad = edit(good, tmp_path / "bad.parquet", column, values)
    for argv in (["show", str(bad)], ["compare", str(good), str(bad)], ["export", "--pytest-benchmark",
                 str(tmp_path / "x.json"), str(bad)], ["baseline", str(bad), "--dir", str(tmp_path / "bl")]):
        one_line_exit_2(capsys, argv, message)


def test_non_integer_schema_version_is_one_line(good, tmp_path, capsys):
    table = pq.read_table(good)
    bad = tmp_path / "badmeta.parquet"
    pq.write_table(table.replace_schema_metadata({b"metalbench_schema_version": b"one"}), bad)
    one_line_exit_2(capsys, ["show", str(bad)], "schema version")


def test_one_bad_file_in_a_folder_is_skipped_with_a_warning(good, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "run.parquet", row())
    edit(good, folder / "odd.parquet", "params", ["[1]", "[1]"])
    assert main(["show", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "odd.parquet" in captured.err and "skipped" in captured.err and "1 rows" in captured.out


def test_dollar_signs_in_names_are_text_in_the_report(tmp_path):
    from bench.report import build_report
    from tests.synthetic import synthetic_rows
    from bench.results import write_table_atomically

    rows = synthetic_rows(24)
    for r in rows:
        r["machine"] = r["machine"] + " evil $\\undefinedcommand{$ box"
    (tmp_path / "r").mkdir()
    write_table_atomically(rows, tmp_path / "r" / "x.parquet")
    index = build_report([tmp_path / "r" / "x.parquet"], tmp_path / "out")
    assert "undefinedcommand" in index.read_text()


# 9 ---------------------------------------------------------------------------------------
def test_install_hints_and_file_strings_print_literally(good, tmp_path, capsys):
    assert main(["list"]) == 0
    assert "pip install 'metalbench[mlx]'" in capsys.readouterr().out
    marked = write(tmp_path / "markup.parquet", row("[/]"), row("torch", params='{"k":64,"m":64,"n":"[/]"}'),
                   row("jax", status="error", reason="boom [/] [bold red]FAKE[/]"))
    assert main(["show", "--all", str(marked)]) == 0
    out = capsys.readouterr().out
    assert "[/]" in out and "[bold red]FAKE[/]" in out


# 10 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["run", "-f", "torch", "--python", "torch=/nonexistent/python"], "no interpreter"),
    (["run", "-f", "torch", "--python", f"torch={__file__}"], "not executable"),
    (["env", "--python", "torch=/nonexistent/python"], "no interpreter"),
    (["run", "--case-timeout", "3000000"], "up to"),
    (["report", "--port", "70000"], "0 to 65535"),
    (["report", "--port", "-1"], "0 to 65535"),
    (["ab", "--a", "torch=/bin/sh", "--b", "torch=/bin/sh", "--rounds", "0"], "positive integer"),
    (["ab", "--a", "torch=/bin/sh", "--b", "torch=/bin/sh", "--rounds", "-3"], "positive integer"),
])
def test_bad_option_values_are_one_line(argv, expected, capsys):
    one_line_exit_2(capsys, argv, expected)


def test_output_paths_that_cannot_be_written_are_one_line_before_any_work(good, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_exit_2(capsys, ["report", str(good), "-o", str(afile)], "afile")
    one_line_exit_2(capsys, ["compare", str(good), str(good), "--markdown", str(afile / "x.md")], "not a folder")
    one_line_exit_2(capsys, ["compare", str(good), str(good), "--json", str(tmp_path)], "is a folder")
    one_line_exit_2(capsys, ["export", "--pytest-benchmark", str(afile / "x.json"), str(good)], "not a folder")
    one_line_exit_2(capsys, ["baseline", str(good), "--dir", str(afile / "sub")], "not a folder")
    assert afile.read_text() == "x"


def test_disk_full_mid_run_is_one_line_and_keeps_the_finished_rows(tmp_path, capsys, monkeypatch):
    import errno

    from bench import journal, results, runner

    def full_after_the_first_row(real):
        """Every write after the first one fails, as on a disk that filled up: the parquet
        rewrite and the run's journal (bench.journal) alike."""
        calls = []

        def write(*args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)

        return write

    def run(self, cases):
        for case in cases:
            self.writer.append(row(case.framework, run_id=self.run_id, workload=case.workload, params='{"n":64}'))

    monkeypatch.setattr(results, "write_table_atomically", full_after_the_first_row(results.write_table_atomically))
    monkeypatch.setattr(journal.Journal, "append", full_after_the_first_row(journal.Journal.append))
    monkeypatch.setattr(runner.Runner, "run", run)
    err = one_line_exit_2(capsys, ["run", "-f", "torch", "-w", "stream", "-d", "fp32,bf16", "-o", str(tmp_path),
                                   "--run-id", "full"], "No space left on device")
    assert "1 finished rows are saved" in err
    assert len(read_results(tmp_path / "full.parquet")) == 1


def test_interpreter_that_prints_a_banner_first_still_runs(run_cases, tmp_path):
    wrapper = tmp_path / "chatty-python"
    wrapper.write_text(f'#!/bin/sh\necho "conda env activated"\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    rows, _ = run_cases([Case("fake", "matmul", SMALL, "fp32")], pythons={"fake": str(wrapper)})
    assert rows[0]["status"] == "ok", rows[0]["reason"]


def test_interpreter_that_only_prints_is_an_error_row_not_an_endless_log(run_cases, tmp_path):
    spam = tmp_path / "spam-python"
    spam.write_text("#!/bin/sh\nwhile true; do echo spam; done\n")
    spam.chmod(0o755)
    rows, path = run_cases([Case("fake", "matmul", SMALL, "fp32")], pythons={"fake": str(spam)})
    assert rows[0]["status"] == "error" and "printed 1000 other lines" in rows[0]["reason"]


@pytest.mark.parametrize("config, message", [
    ("[1, 2]", "JSON list"),
    ('{"hidden_size": "64", "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 8, '
     '"vocab_size": 16}', "hidden_size"),
    ('{"hidden_size": 64, "num_attention_heads": 0, "num_hidden_layers": 1, "intermediate_size": 8, '
     '"vocab_size": 16}', "num_attention_heads"),
])
def test_model_config_with_wrong_types_is_one_line(tmp_path, capsys, config, message):
    (tmp_path / "config.json").write_text(config)
    one_line_exit_2(capsys, ["run", "-f", "torch", "-w", "generate", "-d", "fp32", "--model", str(tmp_path)], message)


# 11 --------------------------------------------------------------------------------------
def test_a_case_larger_than_memory_is_refused_before_it_is_built(capsys):
    one_line_exit_2(capsys, ["run", "-f", "torch", "-w", "matmul", "-d", "fp32", "-p", "m=10000000,n=256,k=256"],
                    "--force-memory")


def test_memory_estimate_scales_with_the_case_and_force_skips_it(monkeypatch, tmp_path):
    from bench import preflight, runner

    big = Case("torch", "matmul", {"m": 10_000_000, "n": 256, "k": 256}, "fp32")
    small = Case("torch", "matmul", SMALL, "fp32")
    assert preflight.host_bytes("matmul", big.params) > 2 * 8 * 10_000_000 * 256  # at least its two float64 copies
    preflight.check_memory([small], "cpu", available=2**30)
    with pytest.raises(ValueError, match="GPU memory"):
        preflight.check_memory([big], "cuda", available=2**50, gpu_free=2**30)
    ran = []

    def run(self, cases):
        for case in cases:
            ran.append(case)
            self.writer.append(row(case.framework, run_id=self.run_id, params=json.dumps(dict(case.params))))

    monkeypatch.setattr(runner.Runner, "run", run)
    main(["run", "-f", "torch", "-w", "matmul", "-d", "fp32", "-p", "m=10000000,n=256,k=256", "--force-memory",
          "--processes", "1", "-o", str(tmp_path)])
    assert [c.params["m"] for c in ran] == [10_000_000]


# 12 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["run", "-f", ",", "-w", "matmul"], "empty framework list"),
    (["run", "-f", "torch", "-w", "matmul", "-d", ""], "empty dtype list"),
    (["run", "-w", ","], "empty workload list"),
    (["run", "--threads", "100000"], "threads"),
    (["run", "--run-id", "../escaped"], "inside the results folder"),
    (["run", "--run-id", "/tmp/x"], "inside the results folder"),
    (["run", "--run-id", "."], "inside the results folder"),
    (["run", "--run-id", "sub/"], "inside the results folder"),
])
def test_permissive_selections_are_refused(argv, expected, capsys):
    one_line_exit_2(capsys, argv, expected)


# 13 --------------------------------------------------------------------------------------
def test_worker_hanging_while_starting_obeys_the_case_timeout(run_cases, tmp_path):
    assert RunConfig(case_timeout_s=5).start_timeout_s == 30 and RunConfig(case_timeout_s=60).start_timeout_s == 60
    assert RunConfig().start_timeout_s == 180
    stuck = tmp_path / "stuck-python"
    stuck.write_text(f'#!/bin/sh\nsleep 120\nexec {sys.executable} "$@"\n')
    stuck.chmod(0o755)
    started = time.monotonic()
    rows, _ = run_cases([Case("fake", "matmul", SMALL, "fp32")], pythons={"fake": str(stuck)}, case_timeout_s=2,
                        min_start_timeout_s=1)
    assert rows[0]["status"] == "timeout" and "within 2s" in rows[0]["reason"]
    assert time.monotonic() - started < 60


# 14 --------------------------------------------------------------------------------------
def test_report_csv_neutralises_spreadsheet_formulas(tmp_path):
    from bench.report.build import write_data

    df = pd.DataFrame({"device_name": ['=HYPERLINK("http://evil.example","click")', "+1", "@SUM(A1)", "-2+3", "ok"],
                       "median_s": [-1.0, 1.0, 2.0, 3.0, 4.0]})
    src = write(tmp_path / "r.parquet", row())
    write_data(df, [str(src)], tmp_path / "out" / "data")
    back = pd.read_csv(tmp_path / "out" / "data" / "results.csv")
    assert list(back["device_name"]) == ["'=HYPERLINK(\"http://evil.example\",\"click\")", "'+1", "'@SUM(A1)", "'-2+3", "ok"]
    assert list(back["median_s"]) == [-1.0, 1.0, 2.0, 3.0, 4.0]  # numbers stay numbers


def test_server_refuses_foreign_host_headers_and_nul_paths(tmp_path):
    from bench.report import start_server

    (tmp_path / "index.html").write_text("<p>report</p>")
    server = start_server(tmp_path, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        def get(path: str, host: str) -> int:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
            try:
                return urllib.request.urlopen(req, timeout=10).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert get("/index.html", f"127.0.0.1:{port}") == 200
        assert get("/index.html", f"localhost:{port}") == 200
        assert get("/index.html", f"evil.example:{port}") == 403
        assert get("/%00", f"127.0.0.1:{port}") == 404
    finally:
        server.shutdown()
        server.server_close()


def test_interrupt_before_the_first_row_does_not_name_a_missing_file(tmp_path, capsys, monkeypatch):
    from bench import runner

    def interrupted(self, cases):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.Runner, "run", interrupted)
    assert main(["run", "-f", "torch", "-w", "stream", "-d", "fp32", "-o", str(tmp_path)]) == 130
    out = capsys.readouterr().out
    assert "nothing was written" in out and not list(tmp_path.glob("*.parquet"))
