"""Measure the regression gate on real runs: A/A false alarms and injected slowdowns.

A benchmark, not a test. It needs a pool of real quick-suite runs of unchanged code on
this machine (it makes them with `bench run` when the pool is short), then:

* A/A: draws disjoint baseline and candidate runs from the pool, many times, and counts
  every case the gate calls `slower` or `faster` — with no code change, each is a false
  alarm. Reported per compared case and per gate decision.
* Injected slowdowns: the same draws, with the candidate's raw samples of a few randomly
  chosen cases multiplied by 1.10 or 1.25 (and the others untouched, so the A/A noise
  between real runs is still there). A trial detects when every chosen case is `slower`.

usage: .venv/bin/python scripts/gate_simulation.py [--runs 8] [--pool results/gate-sim]
           [--baseline-runs 3] [--candidate-runs 2] [--threshold 5%] [--trials 200]
           [--framework torch,jax] [--budget 1.0] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gate.compare import FASTER, SLOWER, GateConfig, compare, parse_threshold  # noqa: E402

BENCH = Path(sys.executable).with_name("bench")


def read_pool(pool: Path, workloads: list[str]) -> pd.DataFrame:
    """The pool's rows of `workloads`. Read leniently (columns the gate does not use may be
    missing from runs made before the schema grew), since these runs are only a noise sample."""
    frames = [pq.read_table(f).to_pandas() for f in sorted(pool.glob("*.parquet"))]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["workload", "run_id"])
    return df[df["workload"].isin(workloads)]


def ensure_pool(pool: Path, runs: int, workloads: list[str], frameworks: str | None, budget: float | None,
                threads: int | None = None) -> list[str]:
    """Complete runs in `pool`, making new ones with `bench run` until there are `runs`."""
    def complete() -> list[str]:
        df = read_pool(pool, workloads)
        if df.empty:
            return []
        counts = df.groupby("run_id").size()
        return sorted(counts[counts == counts.max()].index)

    pool.mkdir(parents=True, exist_ok=True)
    have = complete()
    while len(have) < runs:
        run_id = f"aa-{time.strftime('%H%M%S')}"
        cmd = [str(BENCH), "run", "--out", str(pool), "--run-id", run_id, "--workload", ",".join(workloads)]
        cmd += ["--framework", frameworks] if frameworks else []
        cmd += ["--budget", str(budget)] if budget else []
        cmd += ["--threads", str(threads)] if threads else []
        print(f"[{len(have) + 1}/{runs}] {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        have = complete()
    return have


def draws(run_ids: list[str], n_base: int, n_cand: int, trials: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Disjoint (baseline, candidate) run sets: all of them when few, else a random sample."""
    every = [
        (list(b), list(c))
        for b in itertools.combinations(run_ids, n_base)
        for c in itertools.combinations([r for r in run_ids if r not in b], n_cand)
    ]
    if len(every) <= trials:
        return every
    rng = np.random.default_rng(seed)
    return [every[i] for i in rng.choice(len(every), size=trials, replace=False)]


def slow_down(candidate: pd.DataFrame, keys: list[tuple], factor: float, match: list[str]) -> pd.DataFrame:
    """The candidate with every sample column of the chosen cases scaled by `factor`."""
    out = candidate.copy()
    chosen = out[match].apply(tuple, axis=1).isin(set(keys))
    for col in [c for c in out.columns if c.endswith("samples_s")]:
        out.loc[chosen, col] = out.loc[chosen, col].map(lambda s: None if s is None else np.asarray(s) * factor)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, default=Path("results/gate-sim"))
    ap.add_argument("--runs", type=int, default=8, help="real runs in the pool (made when missing)")
    ap.add_argument("--framework", default=None)
    ap.add_argument("--workload", default="matmul,sdpa", help="the workloads measured (default: matmul,sdpa)")
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None, help="--threads for the pool's runs (e.g. 1 on a shared 2-core box)")
    ap.add_argument("--baseline-runs", type=int, default=3)
    ap.add_argument("--candidate-runs", type=int, default=2)
    ap.add_argument("--threshold", type=parse_threshold, default=GateConfig.threshold)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--inject", type=int, default=3, help="cases slowed per injected trial")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-noise-floor", action="store_true", help="judge every case against the threshold alone")
    args = ap.parse_args()

    workloads = args.workload.split(",")
    run_ids = ensure_pool(args.pool, args.runs, workloads, args.framework, args.budget, args.threads)
    df = read_pool(args.pool, workloads)
    df = df[df["run_id"].isin(run_ids)]
    config = GateConfig(threshold=args.threshold, noise_floor=not args.no_noise_floor, n_resamples=200)  # the interval is shown, not used to decide
    pairs = draws(run_ids, args.baseline_runs, args.candidate_runs, args.trials, args.seed)
    print(f"pool: {len(run_ids)} real runs in {args.pool}; {len(pairs)} draws of {args.baseline_runs} baseline "
          f"vs {args.candidate_runs} candidate runs; threshold {args.threshold:.0%}, alpha {config.alpha}")

    match = ["framework", "backend", "workload", "params", "dtype", "machine", "timing"]
    rng = np.random.default_rng(args.seed)
    compared = alarms = failed_gates = 0
    alarm_cases: dict[str, int] = {}
    by_framework: dict[str, list[int]] = {}  # framework → [slower alarms, compared, ×1.10 hits, tries, ×1.25 hits, tries]
    detected = {1.10: [0, 0], 1.25: [0, 0]}  # trials detected, trials run
    per_case_hits = {1.10: [0, 0], 1.25: [0, 0]}
    wrong_named = {1.10: 0, 1.25: 0}
    for base_ids, cand_ids in pairs:
        base, cand = df[df["run_id"].isin(base_ids)], df[df["run_id"].isin(cand_ids)]
        result = compare(base, cand, config)
        judged = [c for c in result.cases if c.verdict in (SLOWER, FASTER, "same")]
        bad = [c for c in judged if c.verdict in (SLOWER, FASTER)]
        compared += len(judged)
        alarms += len(bad)
        failed_gates += result.exit_code != 0
        for c in judged:
            tally = by_framework.setdefault(c.key["framework"], [0] * 6)
            tally[0] += c.verdict == SLOWER
            tally[1] += 1
        for c in bad:
            alarm_cases[f"{c.verdict} {c.label}"] = alarm_cases.get(f"{c.verdict} {c.label}", 0) + 1
        ok_keys = [tuple(c.key[k] for k in match) for c in judged]
        for factor in detected:
            chosen = [ok_keys[i] for i in rng.choice(len(ok_keys), size=args.inject, replace=False)]
            slowed = compare(base, slow_down(cand, chosen, factor, match), config)
            flagged = {tuple(c.key[k] for k in match) for c in slowed.by_verdict(SLOWER)}
            hits = sum(k in flagged for k in chosen)
            slot = 2 if factor == 1.10 else 4
            for k in chosen:
                by_framework[k[0]][slot] += k in flagged
                by_framework[k[0]][slot + 1] += 1
            per_case_hits[factor][0] += hits
            per_case_hits[factor][1] += len(chosen)
            detected[factor][0] += hits == len(chosen)
            detected[factor][1] += 1
            wrong_named[factor] += len(flagged - set(chosen))

    slower_alarms = sum(t[0] for t in by_framework.values())
    print(f"\nA/A: {slower_alarms} cases wrongly called slower in {compared} case comparisons "
          f"= {slower_alarms / compared:.2%} (the gate's false-alarm rate)")
    print(f"A/A: {alarms} false alarms in {compared} case comparisons = {alarms / compared:.2%} per case; "
          f"gate failed in {failed_gates} of {len(pairs)} draws ({failed_gates / len(pairs):.1%})")
    for label, n in sorted(alarm_cases.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {n:4d}× {label}")
    for fw, (bad_n, n, hit, tries, hit25, tries25) in sorted(by_framework.items()):
        print(f"    {fw:<11} false 'slower' {bad_n}/{n} ({bad_n / max(n, 1):.1%}); "
              f"×1.10 caught {hit}/{tries} ({hit / max(tries, 1):.0%}); ×1.25 caught {hit25}/{tries25} ({hit25 / max(tries25, 1):.0%})")
    for factor, (hit, n) in detected.items():
        c_hit, c_n = per_case_hits[factor]
        print(f"injected ×{factor:.2f} on {args.inject} random cases: all named in {hit}/{n} trials ({hit / n:.1%}); "
              f"per case {c_hit}/{c_n} ({c_hit / c_n:.1%}); other cases flagged slower: {wrong_named[factor]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
