"""The CLI's contract under generated input (hypothesis): any options, any crafted results
file. Every outcome is exit 0, 1 or 2; exit 2 has exactly one line on stderr; nothing
ever prints a traceback (an exception escaping `main` fails the test); and no file that
existed before the command was changed or removed.

`bench run` is exercised up to the point where work would start: the runner is replaced
by one that writes a synthetic row per case, so the plan, the checks and the writer are
real but no framework is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import runner
from bench.cli import main
from bench.results import COLUMNS, SCHEMA, write_table_atomically

def fuzz(examples: int) -> settings:
    """Derandomized (the same examples every run: a test that cannot flake) with no deadline
    (a report takes seconds)."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=True, database=None)

# Text that has broken something before: rich markup, mathtext, Markdown/HTML, formulas,
# path tricks, NUL, newlines, huge and non-finite numbers.
NASTY = ["", ",", " ", "[/]", "[bold red]x[/]", "$\\frac{$", "</details>", "<!--", "=1+1", "@SUM(A1)", "../x",
         "/", "\x00", "a\nb", "nan", "inf", "-1", "0", "1e400", "3000000", "70000", "100000", "1.5", "∞", "torch,,",
         "metalbench[mlx]"]
# Text that acts on a terminal or a Markdown renderer instead of being shown: clear screen,
# window title, an OSC-8 link, bidi override, backspace, C1 CSI (bench.textsafe shows them).
HOSTILE = ["\x1b[2J", "\x1b]0;owned\x07", "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07", "a\u202eb", "x\x08y",
           "\x9b31m", "l\u2028m", "r\rs"]
NASTY += HOSTILE
# What a terminal or renderer would obey if it reached stdout/stderr raw.
OBEYED = ("\x1b", "\x07", "\x00", "\x08", "\x9b", "\u202e", "\u2028", "\r")
junk = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh working directory holding good, bad and odd inputs; cwd is restored after."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    old = Path.cwd()
    try:
        rows = [_row("torch", 1e-3), _row("jax", 2e-3, seed=1)]
        write_table_atomically(rows, root / "good.parquet")
        write_table_atomically([_row("torch", 1.5e-3)], root / "slow.parquet")
        (root / "folder").mkdir()
        write_table_atomically(rows, root / "folder" / "run.parquet")
        (root / "folder" / "broken.parquet").write_bytes(b"PAR1 not really")
        (root / "afile").write_text("x")
        (root / "empty.parquet").write_bytes(b"")
        (root / "folder" / HOSTILE_NAME).write_bytes(b"PAR1 named to act on a terminal")  # its name is shown in a warning
        os.chdir(root)
        yield root
    finally:
        os.chdir(old)
        shutil.rmtree(root, ignore_errors=True)


def _row(framework: str, median: float, seed: int = 0) -> dict:
    s = list(median * np.exp(np.random.default_rng(seed).normal(0.0, 0.02, 30)))
    return {
        "run_id": "r1", "framework": framework, "backend": "cpu", "workload": "matmul", "workload_hash": "h1",
        "params": '{"k":64,"m":64,"n":64}', "dtype": "fp32", "status": "ok", "timing": "queued",
        "machine": "Fuzz CPU / Linux x86_64", "samples_s": s, "median_s": float(np.median(s)), "queued_samples_s": s,
        "queued_median_s": float(np.median(s)), "latency_samples_s": s, "latency_median_s": float(np.median(s)),
        "queued_inner_loops": 4, "latency_inner_loops": 1, "effective_precision": "fp32-class",
        "precision_matches": True, "correct": True, "schema_version": 1,
    }


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def check_contract(root: Path, argv: list[str]) -> tuple[int, str]:
    before = snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    text = err.getvalue()
    assert code in (0, 1, 2), (argv, code, text)
    assert "Traceback" not in text and "Traceback" not in out.getvalue(), (argv, text)
    shown = [c for c in OBEYED if c in text or c in out.getvalue()]
    assert not shown, (argv, shown)  # file names and file text are shown, never obeyed (bench.textsafe)
    if code == 2:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert len(lines) == 1, (argv, text)
    after = snapshot(root)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, (argv, changed)
    return code, text


def _fake_run(self: runner.Runner, cases) -> list[dict]:
    rows = []
    for case in cases:
        r = {**_row(case.framework, 1e-3), "run_id": self.run_id, "workload": case.workload,
             "params": json.dumps(dict(case.params), sort_keys=True), "dtype": case.dtype}
        r.pop("schema_version")
        self.writer.append(r)
        rows.append(r)
    return rows


HOSTILE_NAME = "evil\x1b]0;t\x07\u202e.parquet"
paths = st.sampled_from(["good.parquet", "slow.parquet", "folder", "afile", "empty.parquet", "missing.parquet", f"folder/{HOSTILE_NAME}",
                         "afile/x", "."])
outputs = st.one_of(st.sampled_from(["out", "afile", "afile/sub", "folder", "good.parquet", "new/deeper", "",
                                     "out/x\x1b[2J\u202e.json", "folder/run.parquet"]), junk)


def run_argv() -> st.SearchStrategy[list[str]]:
    opt = st.sampled_from([
        ("-f", st.one_of(st.sampled_from(["torch", "jax,mlx", "pytorch", "tf"]), junk)),
        ("-w", st.one_of(st.sampled_from(["matmul", "stream", "sdpa", "generate"]), junk)),
        ("-d", st.one_of(st.sampled_from(["fp32", "bf16,fp16", "tf32"]), junk)),
        ("-p", st.one_of(st.sampled_from(["m=8,n=8,k=8", "n=64", "m=10000000,n=256,k=256", "m=1,m=2"]), junk)),
        ("--suite", st.one_of(st.just("quick"), junk)),
        ("--device", st.one_of(st.sampled_from(["cpu", "auto"]), junk)),
        ("--timing", st.one_of(st.sampled_from(["latency", "both"]), junk)),
        ("--threads", st.one_of(st.sampled_from(["1", "4"]), junk)),
        ("--python", st.one_of(st.sampled_from(["torch=/nonexistent", "torch=afile", "mlx"]), junk)),
        ("-o", outputs),
        ("--run-id", st.one_of(st.sampled_from(["good", "x", "sub/y", "../z"]), junk)),
        ("--case-timeout", st.one_of(st.just("10"), junk)),
        ("--budget", st.one_of(st.just("0.1"), junk)),
        ("--precision", st.one_of(st.just("0.05"), junk)),
        ("--model", st.sampled_from(["afile", "folder", "missing"])),
    ])
    pair = opt.flatmap(lambda o: o[1].map(lambda v: [o[0], v]))
    return st.lists(pair, max_size=5).map(lambda pairs: ["run", *[x for p in pairs for x in p]])


def other_argv() -> st.SearchStrategy[list[str]]:
    show = st.tuples(st.lists(st.one_of(paths, junk), min_size=1, max_size=3), st.booleans()).map(
        lambda t: ["show", *t[0], *(["--all"] if t[1] else [])])
    compare = st.tuples(paths, st.lists(paths, min_size=1, max_size=2),
                        st.lists(st.sampled_from([
                            ["--alpha", "nan"], ["--alpha", "2"], ["--alpha", "0.01"], ["--threshold", "5%"],
                            ["--threshold", "-5%"], ["--markdown", "afile/x.md"], ["--markdown", "out/s.md"],
                            ["--json", "folder"], ["--json", "out/s.json"], ["--metric", "latency_median_s"],
                            ["--alpha", "x"]]), max_size=3)).map(
        lambda t: ["compare", t[0], *t[1], *[x for o in t[2] for x in o]])
    export = st.tuples(outputs, st.lists(paths, min_size=1, max_size=2)).map(
        lambda t: ["export", "--pytest-benchmark", t[0] or "x.json", *t[1]])
    baseline = st.tuples(st.lists(paths, min_size=1, max_size=2), outputs,
                         st.sampled_from([[], ["--runs", "0"], ["--runs", "-3"], ["--runs", "x"]])).map(
        lambda t: ["baseline", *t[0], "--dir", t[1] or "bl", *t[2]])
    report = st.tuples(st.lists(paths, max_size=2), outputs,
                       st.sampled_from([[], ["--port", "70000"], ["--port", "-1"], ["--baseline", "caffe"],
                                        ["--baseline", "mlx"], ["--serve-seconds", "nan"]])).map(
        lambda t: ["report", *t[0], "-o", t[1] or "rep", *t[2]])
    return st.one_of(show, compare, export, baseline, report, st.just(["list"]), st.lists(junk, max_size=3))


@fuzz(150)
@given(argv=run_argv())
def test_run_options_keep_the_contract(argv):
    with sandbox() as root, pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner.Runner, "run", _fake_run)
        mp.setattr("bench.preflight.gpu_free_bytes", lambda: None)
        mp.setattr("bench.machine.machine_info", lambda: {"machine": "Fuzz CPU / Linux x86_64"})
        check_contract(root, argv)


@fuzz(120)
@given(argv=other_argv())
def test_other_commands_keep_the_contract(argv):
    with sandbox() as root:
        check_contract(root, argv)


# -- crafted results files ----------------------------------------------------------------
def column_values(n: int) -> st.SearchStrategy[list]:
    """n values of one kind, any kind: what a hand-edited or foreign file could hold."""
    return st.one_of(
        st.lists(st.one_of(st.sampled_from(NASTY + ['{"m": 1}', "[1, 2]", "{}", "false", "ok", "error"]),
                           st.text(max_size=20)), min_size=n, max_size=n),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n),
        st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.none(), min_size=n, max_size=n),
        st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4), min_size=n, max_size=n),
    )


@st.composite
def crafted(draw: st.DrawFn) -> tuple[dict[str, list], bytes | None]:
    n = 2
    names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    edits = {name: draw(column_values(n)) for name in names}
    version = draw(st.one_of(st.none(), st.sampled_from([b"1", b"one", b"2", b"", b"-1", b"1.0", b"\xff"])))
    return edits, version


def write_crafted(root: Path, edits: dict[str, list], version: bytes | None) -> Path:
    table = pq.read_table(root / "good.parquet")
    for name, values in edits.items():
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            column = pa.array([str(v) for v in values])
        table = table.set_column(table.schema.get_field_index(name), name, column)
    meta = dict(SCHEMA.metadata)
    if version is not None:
        meta[b"metalbench_schema_version"] = version
    path = root / "crafted.parquet"
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


@fuzz(120)
@given(craft=crafted(), command=st.sampled_from(["show", "show-all", "compare", "compare-rev", "export", "baseline",
                                                 "folder"]))
def test_crafted_results_files_keep_the_contract(craft, command):
    with sandbox() as root:
        path = str(write_crafted(root, *craft))
        argv = {
            "show": ["show", path], "show-all": ["show", "--all", path],
            "compare": ["compare", "good.parquet", path, "--markdown", "out/s.md", "--json", "out/s.json"],
            "compare-rev": ["compare", path, "good.parquet"],
            "export": ["export", "--pytest-benchmark", "out/x.json", path],
            "baseline": ["baseline", path, "--dir", "bl"],
            "folder": ["show", "--all", "."],
        }[command]
        check_contract(root, argv)
        summary = root / "out" / "s.md"
        if summary.exists():  # the gate's Markdown: file text inert there too
            assert not [c for c in OBEYED if c in summary.read_text()], argv


@fuzz(12)
@given(craft=crafted())
def test_crafted_results_files_keep_the_contract_in_the_report(craft):
    with sandbox() as root:
        path = write_crafted(root, *craft)
        check_contract(root, ["report", str(path), "-o", "rep"])


# The surfaces the second audit found holes in (--cpus, --python, --model's config.json):
# generated values, run up to the point where work would start (as above).
CPU_LISTS = ["0", "0-1", "1,0", "0-100000000", "0-4294967295", "1-0", "", "0,,1", "-1", "a", "0-3,8", " 0", "0-",
             "-", "99999999999999999999", "0x1", "١"]
cpu_lists = st.one_of(st.sampled_from(CPU_LISTS), st.from_regex(r"\A[0-9,\- ]{0,14}\Z"), junk)
pythons = st.one_of(st.sampled_from(["torch=afile", "torch=folder", "torch=", "torch", "caffe=/bin/true",
                                     "torch=/bin/true", "mlx=python3", "torch=fifo", "=x", "torch==x"]), junk)
config_values = st.one_of(st.integers(-2, 2**40), st.floats(allow_nan=True, allow_infinity=True), st.none(),
                          st.booleans(), st.text(max_size=6), st.lists(st.integers(0, 3), max_size=2),
                          st.sampled_from(NASTY))
MODEL_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
              "num_key_value_heads", "head_dim", "rope_theta", "rms_norm_eps", "tie_word_embeddings", "model_type")
BASE_CONFIG = {"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 64,
               "vocab_size": 64}
configs = st.one_of(
    st.dictionaries(st.sampled_from(MODEL_KEYS), config_values, max_size=4).map(lambda d: json.dumps({**BASE_CONFIG, **d})),
    st.dictionaries(st.sampled_from(MODEL_KEYS), config_values, max_size=6).map(json.dumps),
    st.sampled_from(["[]", "null", "3", '"x"', "{", "", "\x00", '{"hidden_size": 1e400}']),
)


@fuzz(60)
@given(cpus=cpu_lists, python=pythons, config=configs, model=st.sampled_from(["model", "model", "model", "fifomodel"]),
       which=st.sampled_from(["cpus", "python", "model", "all"]))
def test_cpus_python_and_model_configs_keep_the_contract(cpus, python, config, model, which):
    with sandbox() as root, pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner.Runner, "run", _fake_run)
        mp.setattr("bench.preflight.gpu_free_bytes", lambda: None)
        mp.setattr("bench.machine.machine_info", lambda: {"machine": "Fuzz CPU / Linux x86_64"})
        os.mkfifo(root / "fifo")
        (root / "model").mkdir()
        (root / "model" / "config.json").write_text(config)
        (root / "fifomodel").mkdir()
        os.mkfifo(root / "fifomodel" / "config.json")
        argv = ["run", "-f", "torch", "-w", "generate", "-d", "fp32", "-o", "out"]
        if which in ("cpus", "all"):
            argv += ["--cpus", cpus]
        if which in ("python", "all"):
            argv += ["--python", python]
        argv += ["--model", model]
        check_contract(root, argv)
