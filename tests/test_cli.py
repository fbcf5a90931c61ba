"""Bad input: one line naming the valid choices, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.catalog import FRAMEWORKS
from bench.cli import main


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--framework", "caffe"], f"unknown framework 'caffe' (choose from: {', '.join(FRAMEWORKS)})"),
        (["run", "--workload", "conv"], "unknown workload 'conv' (choose from: matmul, sdpa"),
        (["run", "--dtype", "fp8"], "unknown dtype 'fp8' (choose from: fp32, tf32, fp16, bf16)"),
        (["run", "--suite", "huge"], "unknown suite 'huge' (choose from: quick, full)"),
        (["run", "--device", "tpu"], "unknown device 'tpu' (choose from: auto, metal, cuda, cpu)"),
        (["run", "--timing", "fast"], "unknown timing 'fast' (choose from: latency, queued, both)"),
        (["run", "--threads", "0"], "expected a positive integer, got '0'"),
        (["run", "--case-timeout", "-1"], "expected a positive number, got '-1'"),
        (["run", "--python", "mlx"], "expected FRAMEWORK=/path/to/python"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unwritable_results_path_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--framework", "torch", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write results" in err and len(err.strip().splitlines()) == 1


def test_show_refuses_corrupt_and_foreign_files(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"\x00garbage")
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    for path, message in ((corrupt, "not a readable parquet file"), (foreign, "not a metalbench results file"),
                          (tmp_path / "missing.parquet", "no such file")):
        assert main(["show", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_framework_aliases_resolve():
    from bench.catalog import resolve_framework

    assert resolve_framework("PyTorch") == "torch" and resolve_framework("tf") == "tensorflow"


def test_python_dash_m_bench_and_help_teach():
    out = subprocess.run([sys.executable, "-m", "bench", "run", "--help"], capture_output=True, text=True, check=True).stdout
    for text in ("--framework", "--device", "latency", "queued", "examples:"):
        assert text in out


def test_list_names_every_workload_and_framework(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("matmul", "sdpa", *FRAMEWORKS, "quick", "full"):
        assert name in out
