"""The reference rows (bench.reference): transformers dynamic beside torch eager, static
beside torch compiled, mlx-lm beside MLX eager, each with one model build and the suite's
own repetitions, written as it lands; one serving process per tool, replaced after a row
that killed or hung it; rows a tool cannot run written without starting it;
`--reference-only` runs them alone."""

from __future__ import annotations

import pytest

from bench import runner as runner_module
from bench.cli import main
from bench.measure import FIGURE_REPEATS
from bench.plan import Case
from bench.results import ResultsWriter, load_results
from bench.runner import Runner, RunConfig, run_references
from tests.helpers import metrics
from workloads.generate import tiny


def _recording(monkeypatch):
    calls = []

    def process(runner, tool, case, env, live):
        calls.append((tool, case.mode, case.params["bits"]))
        return [{"status": "ok", "reason": "", "mode": case.mode, "implementation": f"{tool} stub", "median_s": 1e-3}]

    monkeypatch.setattr(runner_module, "_reference_process", process)
    return calls


def test_each_framework_mode_gets_its_own_reference_process(tmp_path, monkeypatch):
    calls = _recording(monkeypatch)
    runner = Runner(RunConfig(case_timeout_s=5), ResultsWriter(tmp_path / "r.parquet"), "r")
    p = tiny()
    cases = [Case(fw, "generate", p, "bf16", mode, process=i) for i in (0, 1) for fw in ("torch", "jax", "mlx") for mode in ("eager", "compiled")]
    rows = run_references(runner, cases)
    assert calls == [("transformers", "eager", 16), ("transformers", "compiled", 16), ("mlx-lm", "eager", 16)]  # once each, not per process
    assert [(r["framework"], r["mode"], r["timing"]) for r in rows] == [
        ("torch", "eager", "reference"), ("torch", "compiled", "reference"), ("mlx", "eager", "reference")]
    assert len(load_results([str(tmp_path / "r.parquet")])) == 3  # written as they land


def test_a_reference_that_cannot_run_the_case_starts_no_process(tmp_path, monkeypatch):
    calls = _recording(monkeypatch)
    runner = Runner(RunConfig(case_timeout_s=5), ResultsWriter(tmp_path / "r.parquet"), "r")
    rows = run_references(runner, [Case("torch", "generate", tiny(bits=4), "bf16", "eager"), Case("mlx", "generate", tiny(), "fp32", "eager")])
    assert calls == []
    assert [(r["status"], r["implementation"]) for r in rows] == [("unsupported", "transformers"), ("unsupported", "mlx-lm")]
    assert "dense weights only" in rows[0]["reason"] and "bf16 activations only" in rows[1]["reason"]


def test_reference_only_runs_no_framework_case(tmp_path, monkeypatch, capsys):
    calls = _recording(monkeypatch)
    out = tmp_path / "out"
    argv = ["run", "-w", "generate", "-d", "bf16", "-f", "torch", "--mode", "compiled", "-p", "layers=2,d_model=128,heads=4,kv_heads=2,"
            "ffn=256,vocab=512,tied=false,prompt=16,new_tokens=16,batch=1,bits=16,group=64", "--reference-only", "-o", str(out), "--run-id", "ref"]
    assert main(argv) == 0
    df = load_results([str(out / "ref.parquet")])
    assert calls == [("transformers", "compiled", 16)] and list(df["timing"]) == ["reference"]
    assert main(["run", "-w", "generate", "-f", "jax", "--reference-only", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no reference beside the planned frameworks and modes" in err and "torch eager, torch compiled, mlx eager" in err


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_transformers_reference_row_on_the_cpu(tmp_path, mode):
    pytest.importorskip("transformers")
    runner = Runner(RunConfig(case_timeout_s=300), ResultsWriter(tmp_path / "r.parquet"), "r")
    (row,) = run_references(runner, [Case("torch", "generate", tiny(), "fp32", mode)])
    assert row["status"] == "ok", row["reason"]
    m = metrics(row)
    assert row["mode"] == mode and ("static cache" if mode == "compiled" else "dynamic cache") in row["implementation"]
    assert len(m["generate_samples_s"]) == FIGURE_REPEATS and len(m["ttft_samples_s"]) == FIGURE_REPEATS
    assert m["tg_tokens_per_s"] > 0 and m["generate_ci_s"] is not None  # six repetitions: a bounded interval


def test_transformers_static_reference_reuses_one_cache_across_its_calls(monkeypatch):
    """generate(cache_implementation="static") makes a new StaticCache per call (transformers
    5.17), whose new tensors recompile (guarded addresses) or re-record (unguarded) the
    compiled step inside the timed calls; the reference passes one, reset before each call."""
    transformers = pytest.importorskip("transformers")
    from bench import reference

    made = []
    real = transformers.StaticCache.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(transformers.StaticCache, "__init__", counting)
    p = tiny(prompt=8, new_tokens=4)
    out = reference.hf_generate(reference.hf_model(p, "cpu", "fp32"), p, "static")
    assert len(made) == 1 and "one StaticCache reset per call" in out["implementation"]
    assert len(out["generate_samples_s"]) == FIGURE_REPEATS and out["graphs_compiled_later"] == 0


_FAKE_SERVE = r"""
import json, os, sys, time
log = os.environ["FAKE_SERVE_LOG"]
with open(log, "a") as f:
    f.write("start\n")
for line in sys.stdin:
    job = json.loads(line)
    if job.get("op") == "exit":
        break
    what = job["params"]["new_tokens"]
    if what == 3:
        os._exit(7)  # dies in the middle of its row
    if what == 5:
        time.sleep(60)  # hangs past the case time-out
    print(json.dumps({"type": "rows", "rows": [{"status": "ok", "reason": "", "mode": job["mode"], "median_s": 1e-3,
                      "implementation": f"fake {what}"}]}), flush=True)
"""


def _fake_serving(monkeypatch, tmp_path):
    """The tool's serving process replaced by a tiny script (no transformers needed): it
    answers each case, dies on new_tokens=3, hangs on new_tokens=5, and logs each start."""
    import sys

    log = tmp_path / "starts.log"
    monkeypatch.setenv("FAKE_SERVE_LOG", str(log))
    monkeypatch.setattr(runner_module.child, "command", lambda python, module, *args: [sys.executable, "-c", _FAKE_SERVE])
    return log


def test_one_process_serves_a_tools_rows(tmp_path, monkeypatch):
    log = _fake_serving(monkeypatch, tmp_path)
    runner = Runner(RunConfig(case_timeout_s=20), ResultsWriter(tmp_path / "r.parquet"), "r")
    cases = [Case("torch", "generate", tiny(new_tokens=n), "bf16", mode) for n in (8, 16) for mode in ("eager", "compiled")]
    rows = run_references(runner, cases)
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert [r["implementation"] for r in rows] == ["fake 8", "fake 8", "fake 16", "fake 16"]
    assert log.read_text().count("start") == 1  # the tool's imports paid once, not per row


def test_a_reference_that_dies_or_hangs_costs_its_row_only(tmp_path, monkeypatch):
    log = _fake_serving(monkeypatch, tmp_path)
    runner = Runner(RunConfig(case_timeout_s=3), ResultsWriter(tmp_path / "r.parquet"), "r")
    cases = [Case("torch", "generate", tiny(new_tokens=n), "bf16", "eager") for n in (8, 3, 5, 16)]
    rows = run_references(runner, cases)
    assert [r["status"] for r in rows] == ["ok", "error", "timeout", "ok"]
    assert "reference process died" in rows[1]["reason"] and "exit code 7" in rows[1]["reason"]
    assert "no answer within 3s" in rows[2]["reason"] and "reference process killed" in rows[2]["reason"]
    assert rows[3]["implementation"] == "fake 16"
    assert log.read_text().count("start") == 3  # a new process after the death and after the hang
    assert len(load_results([str(tmp_path / "r.parquet")])) == 4  # every row written
