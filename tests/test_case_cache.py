"""One build of a costly case per run (bench.case_cache): the first worker stores the case's
inputs and float64 reference in the run's folder, the others load them; the runner makes
that folder, removes each entry after its last case and the folder at the end, and never
uses or removes a folder it did not make."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench import case_cache, worker
from bench.plan import Case, CaseMessage
from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig
from tests.helpers import QUICK_PROTOCOL, installed
from workloads import WORKLOADS
from workloads.generate import tiny


def test_only_a_shared_workloads_cases_that_several_workers_run_are_shared():
    p, q = tiny(), tiny(bits=4)
    cases = [Case("torch", "generate", p, "bf16", "eager"), Case("torch", "generate", p, "bf16", "compiled"),
             Case("jax", "generate", p, "bf16", "compiled"), Case("torch", "generate", q, "bf16", "eager"),
             Case("torch", "matmul", {"m": 8, "n": 8, "k": 8}, "fp32"), Case("jax", "matmul", {"m": 8, "n": 8, "k": 8}, "fp32")]  # fmt: skip
    found = case_cache.shared_keys(cases, {name: w.shared_inputs for name, w in WORKLOADS.items()})
    assert found == {case_cache.case_key("generate", p, "bf16"): 2}  # q: one worker; matmul: cheap to build
    again = [Case("torch", "generate", q, "bf16", "eager", process=0), Case("torch", "generate", q, "bf16", "eager", process=1)]
    assert case_cache.shared_keys(again, {"generate": True}) == {case_cache.case_key("generate", q, "bf16"): 1}  # two fresh processes


def test_the_second_worker_loads_what_the_first_built(tmp_path, monkeypatch):
    entry = tmp_path / "entry"
    message = CaseMessage("generate", tiny(bits=4), "bf16", inputs_cache=str(entry))
    worker._LAST_CASE.clear()
    built, reference, extras = worker._inputs_and_reference(message)
    assert (entry / "complete").is_file()
    worker._LAST_CASE.clear()  # another process: nothing in memory

    def never(*args):
        raise AssertionError("the case was built again")

    monkeypatch.setitem(WORKLOADS, "generate", dataclasses.replace(WORKLOADS["generate"], make_inputs=never, reference=never, reference_extras=never))
    loaded, again, extras_again = worker._inputs_and_reference(CaseMessage("generate", tiny(bits=4), "bf16", mode="compiled", inputs_cache=str(entry)))
    assert set(loaded) == set(built) and all(np.array_equal(loaded[k], built[k]) and loaded[k].dtype == built[k].dtype for k in built)
    assert np.array_equal(again, reference)
    assert set(extras) == {"greedy_tokens"} and np.array_equal(extras_again["greedy_tokens"], extras["greedy_tokens"])
    worker._LAST_CASE.clear()


def test_an_entry_is_written_whole_or_not_at_all(tmp_path):
    entry = tmp_path / "e"
    assert case_cache.store(entry, {"a": np.arange(3.0)}, np.ones(2))
    assert not case_cache.store(entry, {"a": np.arange(3.0)}, np.ones(2))  # never over another entry
    assert not case_cache.store(tmp_path / "f", {"a": np.arange(3.0)}, (np.ones(2),))  # not one array: not stored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]  # no temporary folder left behind
    assert case_cache.load(tmp_path / "missing") is None


@pytest.mark.integration
def test_a_run_shares_one_build_and_leaves_no_cache_behind(tmp_path):
    frameworks = [fw for fw in ("torch", "jax", "mlx") if installed(fw)][:2]
    if len(frameworks) < 2:
        pytest.skip("needs two of torch, jax, mlx")
    writer = ResultsWriter(tmp_path / "r.parquet")
    logs = tmp_path / "r.logs"
    (logs / "other").mkdir(parents=True)
    mode = {"torch": "eager", "jax": "compiled", "mlx": "eager"}
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), writer, "r")
    rows = runner.run([Case(fw, "generate", tiny(), "fp32", mode[fw]) for fw in frameworks])
    assert all(r["status"] == "ok" and r["correct"] for r in rows), [r["reason"] for r in rows]
    assert not (logs / case_cache.FOLDER).exists() and (logs / "other").is_dir()
    second = (logs / f"{frameworks[1]}.log").read_text()
    assert "inputs and reference loaded from the run's case cache" in second


def _stub_runner(tmp_path, monkeypatch):
    """A runner whose cases record the cache entry they were given instead of starting a worker."""
    seen = []
    runner = Runner(RunConfig(protocol=QUICK_PROTOCOL, device="cpu"), ResultsWriter(tmp_path / "r.parquet"), "r")

    def run_one(case, inputs_cache=None):
        seen.append((case.framework, inputs_cache, inputs_cache is not None and inputs_cache.parent.is_dir()))
        if inputs_cache is not None:  # what a worker does: store the entry
            case_cache.store(inputs_cache, {"a": np.zeros(2)}, np.zeros(1))
        return {"status": "skipped", "reason": "stub"}

    monkeypatch.setattr(runner, "_run_one", run_one)
    cases = [Case(fw, "generate", tiny(), "fp32", "eager") for fw in ("torch", "jax", "mlx")] + [Case("torch", "generate", tiny(bits=4), "bf16")]
    return runner, cases, seen


def test_the_runner_removes_each_entry_after_its_last_case_and_its_folder_at_the_end(tmp_path, monkeypatch):
    runner, cases, seen = _stub_runner(tmp_path, monkeypatch)
    root = tmp_path / "r.logs" / case_cache.FOLDER
    removed_after = []
    real_remove = case_cache.remove
    monkeypatch.setattr(case_cache, "remove", lambda path: (removed_after.append((len(seen), path)), real_remove(path)))
    runner.run(cases)
    entries = {entry for _, entry, _ in seen[:3]}
    assert len(entries) == 1 and None not in entries and all(made for _, _, made in seen[:3])
    assert seen[3][1] is None  # one worker runs the int4 case: built where it runs
    assert removed_after == [(3, next(iter(entries))), (4, root)] and not root.exists()


def test_a_cache_folder_the_run_did_not_make_is_neither_used_nor_removed(tmp_path, monkeypatch):
    runner, cases, seen = _stub_runner(tmp_path, monkeypatch)
    theirs = tmp_path / "r.logs" / case_cache.FOLDER
    theirs.mkdir(parents=True)
    (theirs / "keep.txt").write_text("not this run's")
    runner.run(cases)
    assert [entry for _, entry, _ in seen] == [None] * 4
    assert sorted(p.name for p in theirs.iterdir()) == ["keep.txt"]
