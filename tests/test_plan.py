"""What runs: planning cases, and the message that carries a case to a worker."""

from __future__ import annotations

import json

import pyarrow as pa

from bench import measure
from bench.plan import Case, CaseMessage, case_seed, plan
from bench.results import SCHEMA


def test_plan_orders_by_framework_and_skips_dtypes_a_workload_lacks():
    cases = plan(["torch", "mlx"], ["sdpa"], ["fp32", "tf32"], "quick")
    assert {c.dtype for c in cases} == {"fp32"}  # sdpa defines no tf32
    assert [c.framework for c in cases] == ["torch"] * 2 + ["mlx"] * 2


def test_case_message_survives_the_wire():
    protocol = measure.Protocol(budget_s=0.25, min_samples=7)
    sent = CaseMessage.for_case(Case("jax", "matmul", {"m": 8, "n": 8, "k": 8}, "bf16"), ("latency",), protocol)
    wire = json.loads(json.dumps(sent.to_json()))
    assert wire["op"] == "case"
    assert CaseMessage.from_json(wire) == sent


def test_a_case_message_without_timing_knobs_takes_the_defaults():
    got = CaseMessage.from_json({"op": "case", "workload": "stream", "params": {"n": 4}, "dtype": "fp32"})
    assert got.timings == measure.TIMING_KINDS and got.protocol == measure.Protocol()


def test_every_framework_gets_the_same_seed_for_a_case_and_other_cases_differ():
    assert case_seed("matmul", {"m": 8, "n": 8, "k": 8}, "fp32") == case_seed("matmul", {"k": 8, "n": 8, "m": 8}, "fp32")
    assert case_seed("matmul", {"m": 8, "n": 8, "k": 8}, "fp32") != case_seed("matmul", {"m": 8, "n": 8, "k": 8}, "bf16")


def test_one_table_of_timing_fields_makes_the_schema_and_the_worker_columns():
    timing = measure.Timing("queued", [1e-3, 2e-3, 3e-3], inner_loops=4, converged=True)
    for prefix in ("", "latency_", "queued_"):
        columns = measure.timing_columns(prefix, timing)
        assert set(columns) <= set(SCHEMA.names)
        row = pa.Table.from_pylist([columns], schema=pa.schema([SCHEMA.field(c) for c in columns]))  # types agree
        assert row.num_rows == 1
    assert columns["queued_median_s"] == 2e-3 and columns["queued_inner_loops"] == 4 and columns["queued_samples_s"] == [1e-3, 2e-3, 3e-3]
    expected = {f"{prefix}{f.suffix}" for prefix in ("", "latency_", "queued_") for f in measure.TIMING_FIELDS}
    assert expected <= set(SCHEMA.names)
