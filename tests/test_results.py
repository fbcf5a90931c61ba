"""The parquet schema round-trips, writes are atomic, foreign files get one clear line."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.results import COLUMNS, SCHEMA_VERSION, ResultsError, ResultsWriter, load_results, read_results


def row(**over):
    base = {
        "run_id": "r1", "timestamp": datetime(2026, 11, 24, tzinfo=timezone.utc), "framework": "torch",
        "backend": "cpu", "workload": "matmul", "params": '{"k":8,"m":8,"n":8}', "dtype": "fp32", "status": "ok",
        "median_s": 1e-3, "samples_s": [1e-3, 1.1e-3], "latency_samples_s": [2e-3], "versions": {"torch": "2.13"},
        "metrics": {"loss_curve": [3.0, 2.0]}, "correct": True, "machine": "m",
    }
    base.update(over)
    return base


def test_round_trip_keeps_samples_and_json_columns(tmp_path):
    w = ResultsWriter(tmp_path / "a.parquet")
    w.append(row())
    w.append(row(status="unsupported", reason="no kernel", median_s=None, samples_s=None))
    df = read_results(w.path)
    assert list(df.columns) == list(COLUMNS)
    assert list(df["samples_s"][0]) == [1e-3, 1.1e-3]
    assert df["versions"][0] == '{"torch": "2.13"}'
    assert df["status"].tolist() == ["ok", "unsupported"]
    assert (df["schema_version"] == SCHEMA_VERSION).all()


def test_rows_outside_the_schema_are_refused(tmp_path):
    with pytest.raises(KeyError):
        ResultsWriter(tmp_path / "a.parquet").append(row(mystery=1))


def test_write_leaves_no_temporary_files(tmp_path):
    with ResultsWriter(tmp_path / "a.parquet") as w:  # while it writes, its journal is beside it (bench.journal)
        for _ in range(3):
            w.append(row())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]
    assert len(read_results(tmp_path / "a.parquet")) == 3


# -- each row durable at once, at a cost that does not grow with the rows before it ------------
CRASHING_RUN = """
import os, sys
from datetime import datetime, timezone
from bench.results import ResultsWriter
from tests.test_results import row
w = ResultsWriter(sys.argv[1])
for i in range(int(sys.argv[2])):
    w.append(row(median_s=1e-3 * (1 + i)))
os._exit(9)  # a crash: no close, no finalizer, no atexit
"""


def crashed_run(tmp_path, rows: int):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "crashed.parquet"
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(path), str(rows)], cwd=repo, capture_output=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(repo)}, text=True)
    assert done.returncode == 9, done.stderr
    return path


def test_a_run_that_crashes_loses_no_finished_row(tmp_path):
    from bench import journal

    path = crashed_run(tmp_path, 150)
    assert journal.path_for(path).exists()  # left behind by the crash
    assert pq.read_table(path).num_rows < 150  # the file alone lags behind the journal (it is not rewritten per row)
    df = read_results(path)
    assert df["median_s"].tolist() == pytest.approx([1e-3 * (1 + i) for i in range(150)])  # every row, in order, once
    assert len(load_results([tmp_path])) == 150  # through a folder too, and the journal is no results file of its own


def test_a_crash_in_the_middle_of_an_append_keeps_every_complete_row(tmp_path):
    from bench import journal

    path = crashed_run(tmp_path, 90)  # the file holds 80 (ResultsWriter's schedule), the journal 90
    log = journal.path_for(path)
    log.write_bytes(log.read_bytes()[:-40])  # the last row's batch torn
    assert len(read_results(path)) == 89


def test_writing_a_run_costs_linear_not_quadratic_rows(tmp_path, monkeypatch):
    """Rewriting the whole file after each row wrote n(n+1)/2 rows for n (80,200 for 400)."""
    import bench.results as results

    written = []
    real = results.write_table_atomically
    monkeypatch.setattr(results, "write_table_atomically",
                        lambda rows, path, exclusive=False: (written.append(len(rows)), real(rows, path, exclusive)))
    n = 400
    with ResultsWriter(tmp_path / "a.parquet") as w:
        for i in range(n):
            w.append(row(median_s=1e-3 * (1 + i)))
    assert sum(written) <= 20 * n  # 64 small rewrites, then geometric: ~4,100 rows
    df = read_results(tmp_path / "a.parquet")
    assert df["median_s"].tolist() == pytest.approx([1e-3 * (1 + i) for i in range(n)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


def test_a_writer_nobody_closed_leaves_its_file_whole(tmp_path):
    w = ResultsWriter(tmp_path / "a.parquet")
    for i in range(100):
        w.append(row(median_s=1e-3 * (1 + i)))
    del w  # dropped: its finalizer writes every row and removes the journal
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


def test_a_journal_left_by_another_run_is_not_taken_over(tmp_path):
    from bench import journal

    journal.path_for(tmp_path / "a.parquet").write_bytes(b"another run's")
    with pytest.raises(ResultsError, match="already exists"):
        ResultsWriter(tmp_path / "a.parquet")


def test_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ResultsError, match="not a readable parquet file"):
        read_results(bad)


def test_foreign_parquet_is_refused(tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    with pytest.raises(ResultsError, match="not a metalbench results file"):
        read_results(foreign)


def test_other_schema_version_is_refused(tmp_path):
    w = ResultsWriter(tmp_path / "a.parquet")
    w.append(row())
    table = pq.read_table(w.path)
    pq.write_table(table.replace_schema_metadata({b"metalbench_schema_version": b"99"}), tmp_path / "v99.parquet")
    with pytest.raises(ResultsError, match="schema version 99"):
        read_results(tmp_path / "v99.parquet")


def test_load_results_merges_files_and_folders(tmp_path):
    for name in ("a", "b"):
        ResultsWriter(tmp_path / "runs" / f"{name}.parquet").append(row(run_id=name))
    df = load_results([tmp_path / "runs"])
    assert sorted(df["run_id"]) == ["a", "b"] and "source" in df
    with pytest.raises(ResultsError, match="no .parquet files"):
        load_results([tmp_path / "empty"] if (tmp_path / "empty").mkdir() is None else [])


def test_unwritable_results_directory_fails_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="cannot write results"):
        ResultsWriter(blocker / "sub" / "a.parquet")


def test_pandas_reads_it_back_directly(tmp_path):
    w = ResultsWriter(tmp_path / "a.parquet")
    w.append(row())
    assert pd.read_parquet(w.path)["framework"].tolist() == ["torch"]


def test_older_file_of_the_same_version_reads_with_later_columns_null(tmp_path):
    w = ResultsWriter(tmp_path / "a.parquet")
    w.append(row())
    table = pq.read_table(w.path)
    older = table.drop_columns(["plausible", "metrics"])
    pq.write_table(older, tmp_path / "older.parquet")
    df = read_results(tmp_path / "older.parquet")
    assert list(df.columns) == list(COLUMNS) and df["plausible"].isna().all()
    pq.write_table(table.drop_columns(["status"]), tmp_path / "broken.parquet")
    with pytest.raises(ResultsError, match="missing columns status"):
        read_results(tmp_path / "broken.parquet")


def test_many_files_join_in_batches_with_each_row_and_its_source(tmp_path, monkeypatch):
    """load_results joins files' tables a batch at a time (bench.results.JOIN_EVERY); a column
    outside the schema held in two types by two files falls back to one frame per file."""
    import bench.results as results

    for i in range(5):
        ResultsWriter(tmp_path / f"r{i}.parquet").append(row(run_id=f"r{i}", median_s=1e-3 * (i + 1)))
    odd = tmp_path / "r5.parquet"
    table = pq.read_table(tmp_path / "r4.parquet")
    renamed = table.set_column(table.schema.get_field_index("run_id"), "run_id", pa.array(["r5"]))
    pq.write_table(renamed.append_column("extra", pa.array(["text"])), odd)
    table = pq.read_table(tmp_path / "r3.parquet")
    pq.write_table(table.append_column("extra", pa.array([7])), tmp_path / "r3.parquet")
    whole = load_results([tmp_path])
    monkeypatch.setattr(results, "JOIN_EVERY", 2)
    batched = load_results([tmp_path])
    assert whole["run_id"].tolist() == batched["run_id"].tolist() == [f"r{i}" for i in range(6)]
    assert [s.rsplit("/", 1)[-1] for s in batched["source"]] == [f"r{i}.parquet" for i in range(6)]
    extra = batched["extra"].tolist()
    assert extra[3] == 7 and extra[5] == "text" and all(pd.isna(x) for x in extra[:3] + extra[4:5])
