"""The second reliability audit's data-loss, output and hostile-text cases, as specifications.

Outputs never replace a file bench did not create (bench.safe_write); terminal and Markdown
text from files is inert (bench.textsafe); every child process starts the way the worker
does (bench.child). Each test names the audit case it replays (research/reliability-audit-
2026-12-03.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench import cli
from bench.gate.baseline import baseline_path
from bench.results import write_table_atomically


def main(argv: list[str]) -> int:
    """The exit status, whether the refusal came at parse time (argparse) or later."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code)


def row(framework: str = "torch", median: float = 1e-3, seed: int = 0, run_id: str = "r1",
        machine: str = "Test CPU / Linux x86_64", **over) -> dict:
    s = list(median * np.exp(np.random.default_rng(seed).normal(0.0, 0.02, 30)))
    return {
        "run_id": run_id, "framework": framework, "backend": "cpu", "workload": "matmul", "workload_hash": "h1",
        "params": '{"k":64,"m":64,"n":64}', "dtype": "fp32", "status": "ok", "timing": "queued",
        "machine": machine, "samples_s": s, "median_s": float(np.median(s)), "queued_samples_s": s,
        "queued_median_s": float(np.median(s)), "latency_samples_s": s, "latency_median_s": float(np.median(s)),
        "queued_inner_loops": 4, "latency_inner_loops": 1, "effective_precision": "fp32-class",
        "precision_matches": True, "correct": True, **over,
    }


def run_file(path: Path, *rows: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table_atomically(list(rows) or [row()], path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


# -- D18: output options never overwrite an input or a file bench did not write -----------------
def test_export_refuses_to_write_over_its_own_input(tmp_path, capsys):
    """N61: `bench export --pytest-benchmark R.parquet R.parquet` once turned the run into JSON."""
    run = run_file(tmp_path / "r.parquet")
    before = digest(run)
    assert main(["export", "--pytest-benchmark", str(run), str(run)]) == 2
    assert "did not write" in one_error_line(capsys)  # refused at parse time, before any work
    assert digest(run) == before


def test_compare_json_and_markdown_refuse_to_write_over_the_candidate(tmp_path, capsys):
    """N61: `bench compare A B --json B` replaced the candidate run with the verdict."""
    a = run_file(tmp_path / "a.parquet", row(run_id="a"))
    b = run_file(tmp_path / "b.parquet", row(run_id="b", seed=1))
    before = digest(b)
    for option in ("--json", "--markdown"):
        assert main(["compare", str(a), str(b), option, str(b)]) == 2
        line = one_error_line(capsys)
        assert str(b) in line
        assert digest(b) == before


def test_a_candidate_folder_is_an_input_too(tmp_path, capsys):
    a = run_file(tmp_path / "a.parquet", row(run_id="a"))
    cand = run_file(tmp_path / "cand" / "c.parquet", row(run_id="c", seed=1))
    before = digest(cand)
    assert main(["compare", str(a), str(cand.parent), "--json", str(cand)]) == 2
    assert str(cand) in one_error_line(capsys)
    assert digest(cand) == before


def test_an_existing_file_bench_did_not_write_is_not_replaced(tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("my notes\n")
    run = run_file(tmp_path / "r.parquet")
    assert main(["export", "--pytest-benchmark", str(notes), str(run)]) == 2
    assert "bench did not write" in one_error_line(capsys)
    assert notes.read_text() == "my notes\n"


def test_an_output_bench_wrote_is_refreshed_but_not_once_someone_edited_it(tmp_path, capsys):
    run = run_file(tmp_path / "r.parquet")
    out = tmp_path / "out" / "x.json"
    assert main(["export", "--pytest-benchmark", str(out), str(run)]) == 0
    assert main(["export", "--pytest-benchmark", str(out), str(run)]) == 0  # ours, unchanged: refreshed
    out.write_text(out.read_text() + " ")
    capsys.readouterr()
    assert main(["export", "--pytest-benchmark", str(out), str(run)]) == 2  # edited since: the user's now
    assert "bench did not write" in one_error_line(capsys)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_output_is_not_followed_into_another_file(tmp_path):
    target = tmp_path / "precious.json"
    target.write_text("{}")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    run = run_file(tmp_path / "r.parquet")
    assert main(["export", "--pytest-benchmark", str(link), str(run)]) == 2
    assert target.read_text() == "{}"


# -- D35: strict JSON ---------------------------------------------------------------------
def _strict(text: str) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_export_writes_strict_json_when_samples_are_not_finite(tmp_path):
    """N56: 1,287 NaN and 117 Infinity tokens made the export unreadable to jq and JavaScript."""
    bad = [float("inf"), float("nan"), -1.0, 1e-3, 2e-3, 1.5e-3]
    run = run_file(tmp_path / "r.parquet", row(queued_samples_s=bad, latency_samples_s=bad))
    out = tmp_path / "x.json"
    assert main(["export", "--pytest-benchmark", str(out), str(run)]) == 0
    doc = _strict(out.read_text())
    data = doc["benchmarks"][0]["stats"]["data"]
    assert len(data) == 4 and all(np.isfinite(data))


# -- D22: baselines of machines sharing a slug --------------------------------------------
def test_two_machines_with_one_slug_keep_two_baselines(tmp_path, capsys):
    """N43: 'Mac Studio / Darwin arm64' and 'mac-studio-darwin-arm64' shared (and replaced) one file."""
    a = run_file(tmp_path / "a.parquet", row(machine="Mac Studio / Darwin arm64", run_id="a"))
    b = run_file(tmp_path / "b.parquet", row(machine="mac-studio-darwin-arm64", run_id="b"))
    d = tmp_path / "bl"
    assert main(["baseline", str(a), "--dir", str(d)]) == 0
    assert main(["baseline", str(b), "--dir", str(d)]) == 0
    files = sorted(d.glob("*.parquet"))
    assert len(files) == 2
    machines = sorted(pq.read_table(f).column("machine")[0].as_py() for f in files)
    assert machines == ["Mac Studio / Darwin arm64", "mac-studio-darwin-arm64"]
    assert baseline_path("Mac Studio / Darwin arm64").name != baseline_path("mac-studio-darwin-arm64").name
    assert baseline_path("Mac Studio / Darwin arm64").name.startswith("mac-studio-darwin-arm64-")


def test_refreshing_a_baseline_replaces_its_own_file_and_its_old_name(tmp_path):
    from bench.gate.baseline import legacy_path

    machine = "Test CPU / Linux x86_64"
    d = tmp_path / "bl"
    old = run_file(legacy_path(machine, d), row(run_id="old"))  # written before names carried a hash
    new = run_file(tmp_path / "new.parquet", row(run_id="new"))
    assert main(["baseline", str(new), "--dir", str(d)]) == 0
    assert main(["baseline", str(new), "--dir", str(d)]) == 0  # and again: its own file is refreshed
    assert not old.exists()  # superseded, not a second copy the gate would read twice
    assert [p.name for p in d.glob("*.parquet")] == [baseline_path(machine).name]


def test_a_baseline_file_holding_another_machine_is_not_replaced(tmp_path, capsys):
    machine = "Test CPU / Linux x86_64"
    d = tmp_path / "bl"
    foreign = run_file(baseline_path(machine, d), row(machine="Someone Else / Linux x86_64"))
    before = digest(foreign)
    new = run_file(tmp_path / "new.parquet", row())
    assert main(["baseline", str(new), "--dir", str(d)]) == 2
    assert "did not write" in one_error_line(capsys)
    assert digest(foreign) == before


# -- D17, D23, D37: the report's folder ----------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): digest(p) for p in folder.rglob("*") if p.is_file()}


def test_report_refuses_a_data_folder_bench_did_not_write(tmp_path, capsys):
    """N45: `bench report -o proj` deleted proj/data/ with the user's notes in it, exit 0."""
    run = run_file(tmp_path / "runs" / "r.parquet")
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "data" / "my-notes.txt").write_text("keep me")
    (proj / "data" / "dataset.csv").write_text("a,b\n1,2\n")
    before = snapshot(proj)
    assert main(["report", str(run), "-o", str(proj)]) == 2
    assert "bench did not write" in one_error_line(capsys)
    assert snapshot(proj) == before


def test_report_refuses_an_index_html_bench_did_not_write(tmp_path, capsys):
    run = run_file(tmp_path / "runs" / "r.parquet")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>my home page</h1>")
    assert main(["report", str(run), "-o", str(site)]) == 2
    assert "index.html" in one_error_line(capsys)
    assert (site / "index.html").read_text() == "<h1>my home page</h1>"


def test_report_refreshes_its_own_output_and_one_an_older_bench_wrote(tmp_path):
    run = run_file(tmp_path / "runs" / "r.parquet")
    out = tmp_path / "rep"
    assert main(["report", str(run), "-o", str(out)]) == 0
    assert main(["report", str(run), "-o", str(out)]) == 0  # ours: refreshed
    for manifest in (out / ".metalbench-outputs.json", out / "data" / ".metalbench-outputs.json"):
        manifest.unlink()  # as a report from before the manifest existed
    assert main(["report", str(run), "-o", str(out)]) == 0
    assert (out / "data" / "r.parquet").exists()


def test_a_file_added_to_the_data_folder_is_not_deleted(tmp_path, capsys):
    run = run_file(tmp_path / "runs" / "r.parquet")
    out = tmp_path / "rep"
    assert main(["report", str(run), "-o", str(out)]) == 0
    (out / "data" / "mine.txt").write_text("keep me")
    assert main(["report", str(run), "-o", str(out)]) == 2
    assert "mine.txt" in one_error_line(capsys)
    assert (out / "data" / "mine.txt").read_text() == "keep me"


def test_same_named_inputs_get_one_copy_each(tmp_path):
    """N44: a third x.parquet overwrote a copy, so re-rendering from data/ lost a run."""
    files = [run_file(tmp_path / side / "run" / "x.parquet", row(run_id=side, seed=i))
             for i, side in enumerate(("a", "b", "c", "d"))]
    out = tmp_path / "rep"
    assert main(["report", *map(str, files), "-o", str(out)]) == 0
    copies = sorted(p for p in (out / "data").glob("*.parquet"))
    assert len(copies) == 4
    assert sorted(pq.read_table(p).column("run_id")[0].as_py() for p in copies) == ["a", "b", "c", "d"]


def test_a_failure_while_writing_the_report_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """N50: with the disk full, the new data/ was swapped in beside the old page and a partial
    hidden page was left behind."""
    from bench.report import build

    first = run_file(tmp_path / "runs" / "a.parquet", row(run_id="a"))
    out = tmp_path / "rep"
    assert main(["report", str(first), "-o", str(out)]) == 0
    before = snapshot(out)
    second = run_file(tmp_path / "runs" / "b.parquet", row(run_id="b", seed=1))

    def disk_full(context):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build, "render", disk_full)
    assert main(["report", str(first), str(second), "-o", str(out)]) == 2
    assert snapshot(out) == before  # the old page and its data/, as they were
    assert sorted(p.name for p in out.iterdir()) == [".metalbench-outputs.json", "data", "index.html"]


# -- D28: every child starts as the worker does --------------------------------------------
@pytest.fixture
def planted_cwd(tmp_path, monkeypatch):
    """A working directory holding a numpy.py that leaves a marker when it is imported."""
    marker = tmp_path / "PWNED"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "numpy.py").write_text(f"open({str(marker)!r}, 'w').write(__file__)\nraise ImportError('planted')\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [".", os.environ.get("PYTHONPATH", "")])))
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    return marker


def test_doctor_probes_do_not_import_from_the_working_directory(planted_cwd):
    """N25: `bench doctor` run where a numpy.py lies ran it inside the probe."""
    from bench import doctor
    from bench.catalog import FrameworkSpec

    fake = FrameworkSpec("fake", "tests.fake_framework:FakeAdapter", "numpy", "fake")
    rows = doctor.run_probe(fake, "cpu", sys.executable)
    assert not planted_cwd.exists(), planted_cwd.read_text()
    assert any(r.get("found") == "yes" for r in rows), rows


def test_reference_tools_do_not_import_from_the_working_directory(planted_cwd, tmp_path):
    """N22: `bench run -w generate --reference` ran a planted numpy.py in bench/reference.py."""
    from bench.plan import Case
    from bench.results import ResultsWriter
    from bench.runner import Runner, RunConfig, run_references

    runner = Runner(RunConfig(case_timeout_s=5), ResultsWriter(tmp_path / "out" / "r.parquet"), "r")
    from bench.catalog import WORKLOADS

    run_references(runner, [Case("torch", "generate", WORKLOADS["generate"].cases("quick")[0], "fp32")])
    assert not planted_cwd.exists(), planted_cwd.read_text()


def test_any_child_module_runs_from_the_repository_not_the_working_directory(planted_cwd):
    """bench.confirm's runs start through the same helper."""
    from bench import child

    done = subprocess.run(child.command(sys.executable, "bench.schema_doc"), env=child.environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    assert not planted_cwd.exists()


# -- D32: serving beyond loopback ----------------------------------------------------------
def _get(port: int, host_header: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/", skip_host=True)
        conn.putheader("Host", host_header)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_serving_on_every_address_still_checks_the_host_header(tmp_path):
    """N47: `--serve --host 0.0.0.0` answered `Host: evil.example` with the report."""
    import socket

    from bench.report import start_server

    (tmp_path / "index.html").write_text("<p>report</p>")
    server = start_server(tmp_path, "0.0.0.0", 0)
    port = server.server_address[1]
    try:
        assert _get(port, f"evil.example:{port}") == 403
        assert _get(port, "attacker.example") == 403
        assert _get(port, f"localhost:{port}") == 200
        assert _get(port, f"{socket.gethostname()}:{port}") == 200
    finally:
        server.shutdown()
        server.server_close()


def test_serving_beyond_loopback_says_so_in_one_line(tmp_path, capsys):
    from bench.report import serve

    (tmp_path / "index.html").write_text("<p>report</p>")
    serve(tmp_path, "0.0.0.0", 0, seconds=0.1, announce=lambda url: None)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("warning: serving on every address")
    serve(tmp_path, "127.0.0.1", 0, seconds=0.1, announce=lambda url: None)
    assert capsys.readouterr().err == ""


# -- D33, D34: hostile text in the terminal and in Markdown ----------------------------------
ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
OBEYED = ("\x1b", "\x07", "\x00", "\x08", "\u202e", "\x9b")


def hostile_run(path: Path, run_id: str = "h", seed: int = 0) -> Path:
    text = f"torch{ESCAPES}\u202e\x00\x08"
    return run_file(path, row(framework=text, machine=f"Box{ESCAPES} / Linux", run_id=run_id, seed=seed),
                    row(framework=text, machine=f"Box{ESCAPES} / Linux", run_id=run_id, status="error",
                        reason=f"boom {ESCAPES}\u202e\x00\x08 </details> <!--", seed=seed, dtype="bf16"))


def test_terminal_escape_sequences_from_files_are_shown_not_obeyed(tmp_path, capsys):
    """N57: ESC sequences in framework, machine and reason cleared the screen, retitled the
    window and planted an OSC-8 link through `bench show` and `bench compare`."""
    a = hostile_run(tmp_path / "a.parquet")
    b = hostile_run(tmp_path / "b.parquet", run_id="h2", seed=1)
    for argv in (["show", str(a)], ["show", "--all", str(a)], ["compare", str(a), str(b)]):
        main(argv)
        out = capsys.readouterr()
        for text in (out.out, out.err):
            assert not any(c in text for c in OBEYED), (argv, [c for c in OBEYED if c in text])
        assert "\\x1b" in out.out  # shown as text


def test_gate_markdown_keeps_no_bidi_override_nul_or_backspace(tmp_path):
    """N58: the gate's Markdown kept U+202E (visual reversal), NUL and backspace."""
    a = hostile_run(tmp_path / "a.parquet")
    b = hostile_run(tmp_path / "b.parquet", run_id="h2", seed=1)
    md = tmp_path / "s.md"
    main(["compare", str(a), str(b), "--markdown", str(md)])
    text = md.read_text()
    assert not any(c in text for c in OBEYED)
    assert "\\x1b" in text.replace("&#92;", "\\")


def test_doctor_markdown_is_inert_for_hostile_framework_text():
    """N26: a framework's ImportError put raw </details>, <!--, <img> and a link into the
    Markdown users paste into an issue."""
    from bench import doctor

    why = ("ImportError: x </details> ## ✅ all usable <!-- [click](http://evil.example) "
           f"<img src=x onerror=alert(1)> {ESCAPES}\u202e\x00\x08")
    text = doctor.render([{"framework": "torch", "backend": "cpu", "found": "no", "why": why}], {"chip": "x"}, "ok")
    for raw in ("</details>", "<!--", "<img", "](http", "http://", *OBEYED):
        assert raw not in text, raw
    assert len(text.splitlines()) == 9  # title, blank, header, blank, table head, rule, one row, blank, verdict


def test_results_csv_holds_no_nul(tmp_path):
    """N58: results.csv kept 436 NULs."""
    run = run_file(tmp_path / "r.parquet", row(reason="a\x00b", device_name="\x00\x00x"))
    assert main(["report", str(run), "-o", str(tmp_path / "rep")]) == 0
    assert b"\x00" not in (tmp_path / "rep" / "data" / "results.csv").read_bytes()


def test_a_run_id_with_control_characters_is_refused(tmp_path, capsys):
    """N20: `--run-id $'a\\nb\\e[31mred'` was accepted and echoed with a raw ESC."""
    assert main(["run", "-f", "torch", "-w", "stream", "-o", str(tmp_path), "--run-id", "a\nb\x1b[31mred"]) == 2
    line = one_error_line(capsys)
    assert "\x1b" not in line and "control characters" in line


# -- D40: an empty list names the choices ----------------------------------------------------
@pytest.mark.parametrize("argv,names", [
    (["run", "--mode", ""], "eager, compiled"),
    (["run", "--mode", ","], "eager, compiled"),
    (["doctor", "-f", ","], "torch, tensorflow, jax, mlx"),
])
def test_empty_lists_name_the_choices(argv, names, capsys):
    """N4: `--mode ''` and `bench doctor -f ,` said "(choose from: ; …)"."""
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert names in line and "choose from: ;" not in line


def test_an_output_bench_wrote_is_still_refused_where_it_is_an_input(tmp_path):
    from bench import safe_write

    out = safe_write.write_text(tmp_path / "runs" / "s.json", "{}")
    assert safe_write.problem(out) is None  # ours: may be refreshed
    assert "inputs" in safe_write.problem(out, inputs=[out])


def test_a_summary_beside_the_candidate_runs_is_refreshed_on_a_second_compare(tmp_path):
    a = run_file(tmp_path / "a.parquet", row(run_id="a"))
    cand = run_file(tmp_path / "cand" / "c.parquet", row(run_id="c", seed=1))
    summary = tmp_path / "cand" / "summary.json"
    assert main(["compare", str(a), str(cand.parent), "--json", str(summary)]) == 2  # cannot judge one process
    first = summary.read_text()
    assert main(["compare", str(a), str(cand.parent), "--json", str(summary)]) == 2
    assert summary.read_text() == first
