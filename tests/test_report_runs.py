"""Runs and processes as dimensions of the report's data (bench.report.runs), and the
changes between runs decided by the gate (bench.report.changes), without a browser.

The fixture is the synthetic run of each machine written three times under new run ids,
every case measured by three processes, and the newest copy of torch's matmul cases made
1.5× slower: the report must rank within one run (★ exactly as with that run alone) and
its changes must name those cases, and no others, as slower."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.report import build_report
from bench.processes import CASE_IN_RUN, headline
from bench.report.changes import RECENT_STEPS, changes_view, comparison, pairs
from bench.report.data import load, prepare
from bench.report.runs import between_process_interval, per_case, runs_view
from tests.synthetic import write_runs, write_synthetic
from tests.test_report import page_data

SLOWDOWN = 1.5


def slowed(row: dict[str, Any]) -> bool:
    return row["framework"] == "torch" and row["workload"] == "matmul"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    write_runs(directory, copies=3, processes=3, slowed={2: (SLOWDOWN, slowed)})
    return directory


@pytest.fixture(scope="module")
def data(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return page_data(build_report([runs_dir], tmp_path_factory.mktemp("report")).read_text())


def newest_files(runs_dir: Path) -> list[Path]:
    return sorted(runs_dir.glob("*-copy2.parquet"))


def test_between_process_interval_holds_the_median_and_needs_two_processes() -> None:
    m, lo, hi = between_process_interval([1.0, 1.1, 0.95])
    assert m == 1.0 and lo <= 0.95 and hi >= 1.1 - 1e-9  # never narrower than the order statistics
    assert math.isnan(between_process_interval([2.0])[1])
    assert between_process_interval([])[0] != between_process_interval([])[0]  # NaN: nothing to fold


def test_processes_of_one_run_fold_into_one_row_per_case(runs_dir: Path) -> None:
    raw = load([runs_dir], print)
    folded = per_case(raw)
    assert len(raw) == 3 * len(folded)  # three processes per case, never merged across runs
    ok = folded["status"] == "ok"
    assert set(folded.loc[ok, "n_processes"]) == {3}
    assert set(folded.loc[~ok, "n_processes"]) == {0}  # no process stands behind a figure (bench.processes.outcome)
    assert folded.groupby("run_id").size().nunique() == 1


def test_a_file_without_the_process_column_is_one_process(tmp_path: Path) -> None:
    write_synthetic(tmp_path)
    raw = load([tmp_path], print)
    assert "process" not in raw or raw["process"].isna().all() or (raw["process"] == 0).all()
    assert len(per_case(raw)) == len(raw)


def test_runs_view_lists_each_machines_runs_oldest_first_newest_last(runs_dir: Path) -> None:
    view = runs_view(load([runs_dir], print))
    assert len(view) == 2
    for runs in view.values():
        assert [r["id"].rsplit("-", 1)[-1] for r in runs][1:] == ["copy1", "copy2"]
        assert [r["newest"] for r in runs] == [False, False, True] and runs[0]["processes"] == 3


def test_no_group_mixes_runs(data: dict[str, Any]) -> None:
    for g in data["groups"]:
        rows = [data["records"][c["row"]] for c in g["cells"].values()]
        if g["run"] == "newest":  # the default view: each framework's newest figure of the case
            assert all(r["latest"] for r in rows) and len({r["framework"] for r in rows}) == len(rows)
        else:
            assert {r["run"] for r in rows} == {g["run"]}


def test_partial_runs_keep_each_case_at_its_newest_run(tmp_path: Path) -> None:
    """Runs that cover different frameworks (the H100 baseline: one run per framework) all
    show by default, each case from its newest run; a repeated case shows only its newest."""
    write_runs(tmp_path, copies=2, processes=1)
    for path in tmp_path.glob("*-copy1.parquet"):  # the newer copy measured torch only
        table = pq.read_table(path)
        pq.write_table(table.filter(pc.equal(table["framework"], "torch")), path)  # the schema's metadata kept
    data = page_data(build_report([tmp_path], tmp_path / "out").read_text())
    latest = [r for r in data["records"] if r["latest"]]
    assert {r["framework"] for r in latest} == {"torch", "jax", "mlx", "tensorflow"}
    assert {r["run"].endswith("copy1") for r in latest if r["framework"] == "torch"} == {True}
    assert not any(r["run"].endswith("copy1") for r in latest if r["framework"] != "torch")


def _stars(data: dict[str, Any], runs: set[str]) -> dict[tuple, str]:
    out = {}
    for g in data["groups"]:
        if g["run"] not in runs:
            continue
        best = [fw for fw, c in g["cells"].items() if c["status"] == "ok" and c["ratio"] == 1.0]
        if best:
            key = (g["machine"], g["workload"], g["params"], g["dtype"], g["timing"], g["mode"], g["conditions"])
            out[key] = best[0]
    return out


def test_every_comparable_row_keeps_its_star_as_with_a_single_run(data: dict[str, Any], runs_dir: Path,
                                                                  tmp_path: Path) -> None:
    alone = page_data(build_report(newest_files(runs_dir), tmp_path / "alone").read_text())
    newest = {"newest"}
    ranked = {(g["machine"], g["workload"], g["params"], g["dtype"], g["timing"], g["mode"], g["conditions"])
              for g in alone["groups"] if any(c["status"] == "ok" for c in g["cells"].values())}
    assert _stars(data, newest) == _stars(alone, newest)
    runs_alone = {runs[-1]["id"] for runs in alone["runs"].values()}
    assert _stars(alone, runs_alone) == _stars(alone, newest)  # one run: its own view and the default agree
    assert set(_stars(data, newest)) == ranked  # every comparable row has its ★


def test_changes_name_the_slowed_cases_and_no_others(data: dict[str, Any]) -> None:
    assert len(data["changes"]) == 2
    for entry in data["changes"]:
        view = entry["pairs"][entry["default"]]
        assert (view["before"], view["after"]) == tuple(entry["runs"][-2:])
        changed = [c for c in view["cases"] if c["verdict"] not in ("same", "not measured")]
        assert changed and all(c["verdict"] == "slower" for c in changed)
        assert {(c["framework"], c["workload"]) for c in changed} == {("torch", "matmul")}
        ok_torch_matmul = [c for c in view["cases"] if c["framework"] == "torch" and c["workload"] == "matmul"
                           and c["verdict"] != "not measured"]
        assert len(changed) == len(ok_torch_matmul)
        assert all(c["ratio"] == pytest.approx(SLOWDOWN, rel=0.02) for c in changed)
        assert view["cases"][: len(changed)] == changed  # changed cases first
        # identical copies: the gate sees no change at all
        quiet = entry["pairs"][f"{entry['runs'][0]}|{entry['runs'][1]}"]
        assert {c["verdict"] for c in quiet["cases"]} <= {"same", "not measured"}


def test_one_process_per_run_is_insufficient_with_the_plain_ratio_beside_it(tmp_path: Path) -> None:
    write_runs(tmp_path, copies=2, processes=1, slowed={1: (1.2, slowed)})
    raw = load([tmp_path], print)
    machine = sorted(raw["machine"].unique())[0]
    runs = sorted(raw.loc[raw["machine"] == machine, "run_id"].unique())
    view = comparison(raw, machine, runs[0], runs[1])
    judged = [c for c in view["cases"] if c["verdict"] == "insufficient"]
    assert judged and not [c for c in view["cases"] if c["verdict"] in ("slower", "faster")]
    torch = [c for c in judged if c["framework"] == "torch" and c["workload"] == "matmul"]
    assert torch and all(c["plain_ratio"] == pytest.approx(1.2, rel=1e-3) and c["ratio"] is None for c in torch)


def test_pairs_offered() -> None:
    assert pairs(["a"]) == []
    assert pairs(list("abcd")) == [("a", "b"), ("b", "c"), ("c", "d")]
    # only the newest steps: the cost of a report does not grow with every run ever kept
    runs = [f"r{i:04d}" for i in range(2000)]
    assert pairs(runs) == list(zip(runs, runs[1:]))[-RECENT_STEPS:]
    assert pairs(runs, 1) == [("r1998", "r1999")]


def test_older_steps_are_counted_not_compared(runs_dir: Path) -> None:
    view = changes_view(load([runs_dir], print), steps=1)
    for entry in view:
        assert list(entry["pairs"]) == [entry["default"]] and entry["older"] == 1
        assert entry["default"] == f"{entry['runs'][1]}|{entry['runs'][2]}"


def test_runs_name_their_file_for_bench_compare(data: dict[str, Any]) -> None:
    for runs in data["runs"].values():
        assert all(Path(r["file"]).name == f"{r['id']}.parquet" for r in runs)


def test_the_gate_notes_different_threads_in_the_changes_view(tmp_path: Path) -> None:
    """The page's comparison hands the gate the settings it compares (bench.gate.settings):
    a cut list of columns once left them out and the notes never reached the page."""
    write_runs(tmp_path, copies=2, processes=3)
    for path in tmp_path.glob("*-copy1.parquet"):
        table = pq.read_table(path)
        threads = table.schema.get_field_index("threads")
        table = table.set_column(threads, "threads", pc.add(table["threads"], 1))
        pq.write_table(table, path)
    raw = load([tmp_path], print)
    machine = sorted(raw["machine"].unique())[0]
    runs = sorted(raw.loc[raw["machine"] == machine, "run_id"].unique())
    view = comparison(raw, machine, runs[0], runs[1])
    assert len(view["notes"]) == 1 and "threads" in view["notes"][0]
    assert comparison(raw, machine, runs[0], runs[0])["notes"] == []


def test_the_report_and_bench_show_agree_on_a_case_with_a_dead_process(runs_dir: Path) -> None:
    """One rule for a process that died (bench.processes.outcome): the case stands on the
    others in the page as in `bench show`; the report once made the whole case an error."""
    raw = load([runs_dir], print)
    key = next(k for k, part in raw.groupby(list(CASE_IN_RUN), sort=False) if len(part) == 3 and (part["status"] == "ok").all())

    def pick(df: pd.DataFrame) -> dict[str, Any]:
        rows = df[np.logical_and.reduce([df[c] == v for c, v in zip(CASE_IN_RUN, key)])]
        assert len(rows) == 1
        return rows.iloc[0].to_dict()

    dead = raw.index[np.logical_and.reduce([raw[c] == v for c, v in zip(CASE_IN_RUN, key)]) & (raw["process"] == 1)]
    assert len(dead) == 1
    raw.loc[dead, ["status", "reason", "median_s"]] = ["error", "worker died while running (killed by SIGKILL)", math.nan]
    raw.at[dead[0], "samples_s"] = None
    page, show = pick(per_case(raw)), pick(headline(raw))
    assert page["status"] == show["status"] == "ok"
    assert page["n_processes"] == show["n_processes"] == 2
    assert page["reason"] == show["reason"] and "2 of 3 processes stand behind this row" in page["reason"]
    assert "SIGKILL" in page["reason"]
    assert page["median_s"] == pytest.approx(show["median_s"])


def test_a_single_run_has_no_changes_section_data(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "r")
    data = page_data(build_report([tmp_path / "r"], tmp_path / "out").read_text())
    assert data["changes"] == []
    assert all(len(runs) == 1 and runs[0]["newest"] for runs in data["runs"].values())


def test_prepared_ranks_are_within_one_run(runs_dir: Path) -> None:
    rows = prepare(load([runs_dir], print))
    ok = rows[rows["not_ranked"] == ""]
    per_group = ok.groupby(["run_id", "machine", "workload", "params", "dtype", "timing", "mode"])["rank"].min()
    assert (per_group == 1).all()
    assert isinstance(rows, pd.DataFrame)
