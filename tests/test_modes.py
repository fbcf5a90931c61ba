"""The execution mode (eager | compiled) as a dimension: planned, carried by every row,
never ranked or gated across, read from old files, and each framework's compiled path
built where it can be and skipped or refused with the reason where it cannot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import measure
from bench.catalog import FrameworkSpec
from bench.cli import main
from bench.gate.compare import MATCH_COLUMNS
from bench.results import KEY_COLUMNS, SCHEMA, ResultsWriter, read_results
from bench.runner import Case, plan
from bench.summary import COMPARABLE, best_available, rank
from workloads.base import MODES

COMPILING = FrameworkSpec("fake-compiling", "tests.fake_framework:CompilingAdapter", "numpy", "fake")
SMALL = {"m": 8, "n": 8, "k": 8}


def test_plan_runs_multi_op_workloads_in_each_mode_and_one_op_workloads_eager_only():
    cases = plan(["torch"], ["matmul", "generate", "train_step"], ["bf16"], "quick", modes=MODES)
    modes = {(c.workload, c.mode) for c in cases}
    assert modes == {("matmul", "eager"), ("generate", "eager"), ("generate", "compiled"), ("train_step", "eager"), ("train_step", "compiled")}
    assert not plan(["torch"], ["matmul"], ["fp32"], "quick", modes=("compiled",))


def _row(**kw):
    base = dict(machine="m", workload="generate", params="{}", dtype="bf16", timing="queued", status="ok", plausible=True,
                precision_matches=None, correct=True)  # fmt: skip
    return {**base, **kw}


def test_ranking_never_pairs_eager_with_compiled():
    assert "mode" in COMPARABLE and "mode" in KEY_COLUMNS and "mode" in MATCH_COLUMNS
    df = pd.DataFrame([_row(framework="torch", mode="eager", median_s=3.0), _row(framework="jax", mode="compiled", median_s=1.0)])
    ranked = rank(df)
    assert ranked["rank"].tolist() == [1, 1] and ranked["vs_best"].tolist() == [1.0, 1.0]


def test_best_available_takes_each_frameworks_fastest_mode_and_names_it():
    df = pd.DataFrame([
        _row(framework="torch", mode="eager", median_s=3.0), _row(framework="torch", mode="compiled", median_s=1.0),
        _row(framework="mlx", mode="eager", median_s=2.0), _row(framework="mlx", mode="compiled", median_s=2.5, correct=False),
    ])  # fmt: skip
    best = best_available(df).set_index("framework")
    assert best.loc["torch", "mode"] == "compiled" and best.loc["torch", "best_of_modes"] == "compiled,eager"
    assert best.loc["mlx", "mode"] == "eager" and best.loc["mlx", "best_of_modes"] == "eager"  # an incorrect row is no one's best
    assert best.loc["mlx", "vs_best"] == 2.0


def test_old_files_without_mode_read_as_eager_unless_the_implementation_names_a_step_compiler(tmp_path):
    rows = [
        dict(run_id="r", framework="torch", backend="cpu", workload="generate", params="{}", dtype="bf16", status="ok", median_s=1.0,
             machine="m", implementation="eager torch, preallocated KV cache"),
        dict(run_id="r", framework="jax", backend="cpu", workload="train_step", params="{}", dtype="bf16", status="ok", median_s=1.0,
             machine="m", implementation="jax.jit(value_and_grad + optax.adamw, donated buffers)"),
        dict(run_id="r", framework="jax", backend="cpu", workload="matmul", params="{}", dtype="fp32", status="ok", median_s=1.0,
             machine="m", implementation="jax.jit(jnp.matmul)"),
    ]  # fmt: skip
    old = pa.schema([f for f in SCHEMA if f.name != "mode"], metadata=SCHEMA.metadata)
    path = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=old), path)
    assert read_results(path)["mode"].tolist() == ["eager", "compiled", "eager"]  # one op is eager whatever wraps it


def test_measure_repeat_times_each_call_with_its_barrier():
    ticks, waited = iter(range(100)), []
    r = measure.repeat(lambda: "out", waited.append, 6, clock=lambda: float(next(ticks)))
    assert r.samples_s == [1.0] * 6 and waited == ["out"] * 6
    assert r.summary.n == 6 and r.summary.median == 1.0 and np.isfinite(r.summary.ci_low)


def test_compiled_row_carries_its_mode_and_its_first_call_holds_the_compile(run_cases):
    rows, path = run_cases([Case("fake-compiling", "matmul", SMALL, "fp32", "compiled"), Case("fake-compiling", "matmul", SMALL, "fp32", "eager")],
                           frameworks={"fake-compiling": COMPILING}, suite="full")  # fmt: skip
    compiled, eager = rows
    assert compiled["status"] == "ok" and compiled["mode"] == "compiled" and compiled["implementation"].startswith("fake.compile")
    assert compiled["first_call_s"] >= 0.2  # the compile (a 0.2 s sleep) is inside the first call, not in the samples
    assert eager["status"] == "ok" and eager["mode"] == "eager"
    assert read_results(path)["mode"].tolist() == ["compiled", "eager"]


def test_a_mode_too_slow_for_the_quick_suite_is_skipped_with_where_it_runs(run_cases):
    (row,), _ = run_cases([Case("fake-compiling", "matmul", SMALL, "fp32", "eager")], frameworks={"fake-compiling": COMPILING}, suite="quick")
    assert row["status"] == "skipped" and row["mode"] == "eager"
    assert "--suite full" in row["reason"] and "an hour" in row["reason"]


def test_an_adapter_that_ignores_the_mode_is_an_error_not_a_mislabelled_row(run_cases):
    (row,), _ = run_cases([Case("fake-compiling", "matmul", {**SMALL, "behaviour": "ignore-mode"}, "fp32", "compiled")],
                          frameworks={"fake-compiling": COMPILING}, suite="full")  # fmt: skip
    assert row["status"] == "error" and "built as eager" in row["reason"]


def test_torch_compile_where_inductor_cannot_generate_code_is_unsupported_with_the_reason(monkeypatch):
    torch = pytest.importorskip("torch")
    from bench.frameworks.base import Unsupported
    from bench.frameworks.torch import ops
    from bench.frameworks.torch.adapter import TorchAdapter

    monkeypatch.setattr(torch, "__version__", "2.8.0")
    mps = type("FakeMPS", (), {"backend": "metal"})()
    with pytest.raises(Unsupported, match=r"torch.compile on MPS needs .*torch >= 2.9.*2\.8\.0"):
        ops.torch_compile(mps, lambda x: x)
    failure = torch._dynamo.exc.TorchRuntimeError("no working C++ compiler")  # what a compile failing in the first call raises
    adapter = TorchAdapter(device="cpu")
    assert "torch.compile failed on cpu" in adapter.unsupported_reason(failure) and "C++" in adapter.unsupported_reason(failure)


def test_torch_compiled_generate_is_skipped_on_cpu_in_the_quick_suite(run_cases):
    pytest.importorskip("torch")
    from workloads.generate import tiny

    (row,), _ = run_cases([Case("torch", "generate", tiny(), "fp32", "compiled")], device="cpu", suite="quick")
    assert row["status"] == "skipped" and "inductor" in row["reason"] and "--suite full" in row["reason"]


def test_jax_compiled_decode_step_compiles_on_its_first_call_and_not_after(caplog):
    pytest.importorskip("jax")
    from tests.helpers import compiled_jax_generate, jax_compiles_logged
    from workloads.generate import tiny

    p = tiny(prompt=8, new_tokens=4)
    adapter, x = compiled_jax_generate(p)
    prepared = adapter.prepare("generate", p, "fp32", x)
    assert prepared.mode == "compiled" and prepared.implementation.startswith("jax.jit")
    with jax_compiles_logged(caplog):
        measure.time_first_call(prepared.call, adapter.barrier)
        first = [r.getMessage() for r in caplog.records if "step_fn" in r.getMessage() and "ompil" in r.getMessage()]
        caplog.clear()
        for _ in range(3):
            adapter.barrier(prepared.call())
        later = [r.getMessage() for r in caplog.records if "step_fn" in r.getMessage() and "ompil" in r.getMessage()]
    assert first and not later


def test_cli_mode_choices_and_show_names_each_frameworks_best_mode(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--mode", "jit"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown mode 'jit' (choose from: eager, compiled)" in err
    writer = ResultsWriter(tmp_path / "two-modes.parquet")
    for fw, mode, t in (("torch", "eager", 3e-3), ("torch", "compiled", 1e-3), ("jax", "compiled", 2e-3)):
        writer.append(dict(run_id="r", framework=fw, backend="cpu", workload="generate", params=json.dumps({"bits": 16}), dtype="bf16",
                           status="ok", median_s=t, machine="m", timing="queued", mode=mode, correct=True, implementation=f"{fw} {mode} path"))
    assert main(["show", str(writer.path)]) == 0
    out = capsys.readouterr().out
    assert "each framework at its best" in out and "torch compiled path" in out and "jax compiled path" in out
    assert "torch eager path" not in out  # not torch's best: the view lists one row per framework


def test_a_mode_per_framework_plans_each_framework_at_its_own(capsys):
    """`--mode torch=eager,jax=compiled`: each framework at the mode named for it; one with
    no entry of its own takes the plain modes given (both when none is)."""
    from bench import cli

    args = cli.build_parser().parse_args(["run", "-w", "generate", "--mode", "torch=eager,jax=compiled", "--force-memory"])
    cases = cli._plan_cases(args, ["torch", "jax", "mlx"], ["generate"], ["bf16"], None)
    assert {(c.framework, c.mode) for c in cases} == {("torch", "eager"), ("jax", "compiled"), ("mlx", "eager"), ("mlx", "compiled")}
    args = cli.build_parser().parse_args(["run", "-w", "generate", "--mode", "eager,jax=compiled", "--force-memory"])
    cases = cli._plan_cases(args, ["torch", "jax"], ["generate"], ["bf16"], None)
    assert {(c.framework, c.mode) for c in cases} == {("torch", "eager"), ("jax", "compiled")}
    for bad, said in (("torch=jit", "unknown mode 'jit' (choose from: eager, compiled)"), ("nope=eager", "nope")):
        with pytest.raises(SystemExit):
            main(["run", "--mode", bad])
        assert said in capsys.readouterr().err
