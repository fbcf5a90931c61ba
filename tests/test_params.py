"""`-p KEY=VALUE,...` describes every workload, numbers, flags and text alike."""

from __future__ import annotations

import pytest

from bench.catalog import format_params, params_example, parse_params
from bench.cli import main
from workloads import WORKLOADS


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_workloads_cases_can_be_written_with_p(workload):
    for suite in ("quick", "full"):
        for case in WORKLOADS[workload].cases(suite):
            assert parse_params(workload, format_params(case)) == case


def test_decimal_and_text_parameters_parse_to_their_types(tmp_path):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("some training text\n")
    p = parse_params("train_step", f"layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lr=3e-4,data={corpus}")
    assert p["lr"] == 3e-4 and isinstance(p["lr"], float) and p["data"] == str(corpus)
    q = parse_params("qmatmul", "m=1,n=4096,k=4096,bits=4,scheme=affine,group=64")
    assert q["scheme"] == "affine" and q["bits"] == 4


@pytest.mark.parametrize(
    "workload, text, expected",
    [
        ("qmatmul", "m=8,n=512,k=512,bits=8,scheme=fancy,group=64", "bad value for qmatmul scheme: 'fancy' (choose from: affine, symmetric)"),
        ("lora", "layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lora_rank=8,lora_alpha=16,lr=-1,data=builtin",
         "bad value for lora lr: '-1' (expected a positive number"),
        ("train_step", "layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lr=0.001,data=/no/such/file",
         "(choose from: builtin, or the path of a UTF-8 text file)"),
        ("matmul", "m=16,n=1024,k=1024,m=32", "duplicate parameter 'm' for matmul (give each KEY once)"),
        ("matmul", "m=1.5,n=2,k=2", "bad size for matmul: m=1.5 (must be a positive integer)"),
    ],
)
def test_bad_parameters_name_the_problem(workload, text, expected):
    with pytest.raises(ValueError) as exc:
        parse_params(workload, text)
    assert expected in str(exc.value)


def test_duplicate_key_on_the_command_line_is_one_line_and_exit_2(capsys):
    assert main(["run", "-w", "matmul", "-p", "m=16,n=1024,k=1024,k=8"]) == 2
    err = capsys.readouterr().err
    assert "duplicate parameter 'k' for matmul" in err and len(err.strip().splitlines()) == 1


def test_the_example_in_the_missing_key_message_is_itself_valid():
    with pytest.raises(ValueError) as exc:
        parse_params("generate", "layers=2")
    example = str(exc.value).split("(e.g. ")[1].rstrip(")")
    assert example == params_example("generate")
    assert parse_params("generate", example) == WORKLOADS["generate"].cases("quick")[0]
