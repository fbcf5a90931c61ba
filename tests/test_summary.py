"""Nothing is ranked against a row that measured something else."""

from __future__ import annotations

import pandas as pd

from bench.summary import rank


def rows(**over_by_framework):
    base = dict(machine="m", workload="matmul", params="{}", dtype="fp32", timing="queued", status="ok",
                precision_matches=True, correct=True, effective_precision="fp32-class")
    out = []
    for fw, (median, over) in over_by_framework.items():
        out.append({**base, "framework": fw, "median_s": median, **over})
    return pd.DataFrame(out)


def test_a_precision_mismatch_is_never_ranked():
    df = rank(rows(torch=(2.0, {}), jax=(0.3, {"precision_matches": False, "effective_precision": "tf32-class", "correct": False})))
    jax = df[df.framework == "jax"].iloc[0]
    assert pd.isna(jax["rank"]) and "tf32-class" in jax["not_ranked"]
    assert df[df.framework == "torch"].iloc[0]["rank"] == 1


def test_latency_and_queued_rows_are_ranked_separately():
    df = rank(rows(torch=(2.0, {"timing": "latency"}), mlx=(1.0, {"timing": "queued"})))
    assert df["rank"].tolist() == [1, 1]


def test_rank_and_ratio_to_best_within_a_group():
    df = rank(rows(torch=(2.0, {}), mlx=(1.0, {}), jax=(4.0, {}), tensorflow=(1.0, {"status": "error"})))
    got = dict(zip(df.framework, zip(df["rank"], df["vs_best"])))
    assert got["mlx"] == (1, 1.0) and got["torch"] == (2, 2.0) and got["jax"] == (3, 4.0)
    assert pd.isna(got["tensorflow"][0])


def test_rows_whose_precision_was_not_judged_are_still_ranked():
    df = rank(rows(torch=(2.0, {"precision_matches": None, "effective_precision": "not-classified"}), mlx=(1.0, {})))
    assert df["rank"].tolist() == [2, 1]


def test_an_implausible_row_is_never_ranked():
    df = rank(rows(torch=(2.0, {}), mlx=(1e-9, {"plausible": False})))
    assert df["rank"].tolist()[0] == 1 and "implausible" in df["not_ranked"].tolist()[1]


def test_workload_definition_hashes_are_stable_across_processes():
    import subprocess
    import sys

    code = "from workloads import WORKLOADS; print(sorted((n, w.definition_hash()) for n, w in WORKLOADS.items()))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert len(runs) == 1
