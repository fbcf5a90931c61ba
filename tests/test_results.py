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
    w = ResultsWriter(tmp_path / "a.parquet")
    for _ in range(3):
        w.append(row())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


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
