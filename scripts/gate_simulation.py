"""Measure the regression gate on real runs: A/A false alarms, injected slowdowns, and `bench ab`.

A benchmark, not a test. It needs a pool of real quick-suite runs of unchanged code on this
machine, made as `make baseline` / `make gate` make them (`--threads 1 --budget 0.3`; it makes
more with `bench run` when the pool is short). Every run started fresh worker processes, so
each is one process per case: the gate's unit. Runs are taken in the order they were made.

* Gate runs (`make baseline` then, later, `make gate`): a block of B consecutive runs is the
  baseline and a later block of C consecutive runs the candidate. Reported over every such
  pair of disjoint blocks (sampled down to --trials), and over a strict partition of the pool
  into B+C-run chunks, where no real run serves two simulated gate runs.
* A/A: with no code change, a gate run that exits 1 is a false alarm.
* Injected slowdowns: the candidate's samples of every case multiplied by 1.10 and 1.25
  (each case's verdict depends only on its own figures, the baseline's spreads and the
  number of cases, so slowing all at once equals slowing one at a time). A case counts
  where, in that draw, it states it can detect the slowdown (`detectable` ≤ 10% / 25%).
* `bench ab` with identical environments: windows of 2R consecutive runs dealt A B A B ….

usage: .venv/bin/python scripts/gate_simulation.py [--pool results/pool] [--runs 0]
           [--baseline-runs 4] [--candidate-runs 3] [--ab-rounds 5] [--trials 150]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gate.compare import EXIT_REGRESSION, SLOWER, GateConfig, compare  # noqa: E402

BENCH = Path(sys.executable).with_name("bench")
FACTORS = ((1.25, 0.25), (1.10, 0.10))  # injected slowdown, and the detectable it must be caught at


def read_pool(pool: Path) -> tuple[pd.DataFrame, list[str]]:
    """The pool's rows, and its complete runs in the order they were made. Read leniently
    (runs are only a noise sample); a run with fewer rows than the most complete is dropped."""
    frames = [pq.read_table(f).to_pandas() for f in sorted(pool.glob("*.parquet"))]
    if not frames:
        return pd.DataFrame(), []
    df = pd.concat(frames, ignore_index=True)
    counts = df.groupby("run_id").size()
    complete = counts[counts == counts.max()].index
    started = df[df["run_id"].isin(complete)].groupby("run_id")["timestamp"].min().sort_values()
    return df[df["run_id"].isin(complete)], list(started.index)


def make_runs(pool: Path, n: int, args: argparse.Namespace) -> None:
    pool.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        run_id = f"pool-{time.strftime('%H%M%S')}"
        cmd = [str(BENCH), "run", "--suite", "quick", "--out", str(pool), "--run-id", run_id,
               "--threads", str(args.threads), "--budget", str(args.budget)]
        print(f"[{i + 1}/{n}] {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def block_pairs(n_runs: int, b: int, c: int, trials: int, rng: np.random.Generator) -> list[tuple[range, range]]:
    """(baseline block, later candidate block) of consecutive runs, disjoint."""
    pairs = [(range(i, i + b), range(j, j + c)) for i in range(n_runs - b + 1) for j in range(i + b, n_runs - c + 1)]
    if len(pairs) > trials:
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), size=trials, replace=False))]
    return pairs


def partition(n_runs: int, b: int, c: int) -> list[tuple[range, range]]:
    """Consecutive chunks of b+c runs, each a gate run of its own: no run serves twice."""
    size = b + c
    return [(range(k, k + b), range(k + b, k + size)) for k in range(0, n_runs - size + 1, size)]


def slowed(candidate: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = candidate.copy()
    for col in [c for c in out.columns if c.endswith("samples_s")]:
        out[col] = out[col].map(lambda s: None if s is None else np.asarray(s) * factor)
    return out


class Tally:
    """What the gate did over many simulated gate runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.red = 0
        self.red_by_fw: dict[str, int] = defaultdict(int)
        self.cannot_judge = 0
        self.alarm_cases: dict[str, int] = defaultdict(int)
        self.judged: dict[str, int] = defaultdict(int)  # framework → cases judged (summed over runs)
        self.stating: dict[tuple[str, float], int] = defaultdict(int)  # (fw, limit) → cases stating ≤ limit
        self.caught: dict[tuple[str, float], int] = defaultdict(int)
        self.per_case: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0])  # (label, factor) → caught, tried

    def aa(self, result) -> None:
        self.runs += 1
        self.red += result.exit_code == EXIT_REGRESSION
        self.cannot_judge += result.exit_code == 2
        for fw in {c.key["framework"] for c in result.by_verdict(SLOWER)}:
            self.red_by_fw[fw] += 1
        for c in result.by_verdict(SLOWER, "faster"):
            self.alarm_cases[f"{c.verdict} {c.label}"] += 1
        for c in result.judged:
            self.judged[c.key["framework"]] += 1
            for _, limit in FACTORS:
                self.stating[(c.key["framework"], limit)] += c.detectable <= limit

    def injected(self, result, factor: float, limit: float) -> None:
        for c in result.judged:
            if c.detectable <= limit:
                hit = c.verdict == SLOWER
                self.caught[(c.key["framework"], limit)] += hit
                self.per_case[(c.label, factor)][0] += hit
                self.per_case[(c.label, factor)][1] += 1

    def lines(self, title: str) -> list[str]:
        fws = sorted(self.judged)
        total = sum(self.judged.values())
        out = [f"\n{title}: {self.runs} simulated gate runs",
               f"  A/A whole gate red (exit 1): {self.red}/{self.runs} = {self.red / max(self.runs, 1):.1%}"
               + (f"; cannot judge (exit 2): {self.cannot_judge}" if self.cannot_judge else "")]
        out.append("  red because of: " + ", ".join(f"{fw} {self.red_by_fw[fw]}/{self.runs}" for fw in fws))
        for label, n in sorted(self.alarm_cases.items(), key=lambda kv: -kv[1])[:6]:
            out.append(f"    {n:3d}× {label}")
        cases = total / max(self.runs, 1)
        for factor, limit in FACTORS:
            stating = sum(self.stating[(fw, limit)] for fw in fws)
            caught = sum(self.caught[(fw, limit)] for fw in fws)
            worst = [(hit / n, lab) for (lab, f), (hit, n) in self.per_case.items() if f == factor and n >= 3]
            worst_text = f"; worst case {min(worst)[0]:.0%} ({min(worst)[1]})" if worst else ""
            out.append(f"  cases stating ≤ {limit:.0%}: {stating / max(total, 1):.0%} of {cases:.0f} judged "
                       f"({', '.join(f'{fw} {self.stating[(fw, limit)] / max(self.judged[fw], 1):.0%}' for fw in fws)}); "
                       f"×{factor:.2f} caught in {caught}/{stating} = {caught / max(stating, 1):.1%} "
                       f"({', '.join(f'{fw} {self.caught[(fw, limit)] / max(self.stating[(fw, limit)], 1):.0%}' for fw in fws)})"
                       f"{worst_text}")
        return out


def simulate(df: pd.DataFrame, order: list[str], pairs: list[tuple[range, range]], config: GateConfig,
             inject: bool = True) -> Tally:
    tally = Tally()
    by_run = {run: part for run, part in df.groupby("run_id")}
    for b_idx, c_idx in pairs:
        base = pd.concat([by_run[order[i]] for i in b_idx])
        cand = pd.concat([by_run[order[i]] for i in c_idx])
        tally.aa(compare(base, cand, config))
        if inject:
            for factor, limit in FACTORS:
                tally.injected(compare(base, slowed(cand, factor), config), factor, limit)
    return tally


def ab_windows(n_runs: int, rounds: int, disjoint: bool) -> list[tuple[range, range]]:
    """Windows of 2*rounds consecutive runs dealt A B A B: A takes the even ones, B the odd."""
    step = 2 * rounds if disjoint else 1
    return [(range(k, k + 2 * rounds, 2), range(k + 1, k + 2 * rounds, 2))
            for k in range(0, n_runs - 2 * rounds + 1, step)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, default=Path("results/pool"))
    ap.add_argument("--runs", type=int, default=0, help="make this many more real runs first")
    ap.add_argument("--threads", type=int, default=1, help="--threads of new runs (default 1, as make gate)")
    ap.add_argument("--budget", type=float, default=0.3, help="--budget of new runs (default 0.3, as make gate)")
    ap.add_argument("--baseline-runs", type=int, default=4, help="make baseline's BASELINE_RUNS (default 4)")
    ap.add_argument("--candidate-runs", type=int, default=3, help="make gate's GATE_RUNS (default 3)")
    ap.add_argument("--ab-rounds", type=int, default=5, help="bench ab --rounds (default 5)")
    ap.add_argument("--trials", type=int, default=150, help="most gate-run draws to simulate")
    ap.add_argument("--figure", choices=("min", "median"), default=GateConfig.figure, help="per-process figure")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    if args.runs:
        make_runs(args.pool, args.runs, args)
    df, order = read_pool(args.pool)
    if len(order) < args.baseline_runs + args.candidate_runs:
        print(f"pool {args.pool}: {len(order)} complete runs, need at least {args.baseline_runs + args.candidate_runs}")
        return 2
    config = GateConfig(figure=args.figure)
    ok = df[(df["status"] == "ok") & df["run_id"].isin(order[:1])]
    print(f"pool {args.pool}: {len(order)} complete real runs, {len(ok)} timed cases each; "
          f"gate = {args.baseline_runs} baseline runs vs {args.candidate_runs} candidate runs; "
          f"per-process figure {config.figure}; family-wise alpha {config.alpha}, floor {config.threshold:.0%}, "
          f"detectable at {config.power:.0%} power")
    rng = np.random.default_rng(args.seed)
    b, c = args.baseline_runs, args.candidate_runs
    report = []
    report += simulate(df, order, block_pairs(len(order), b, c, args.trials, rng), config).lines(
        f"make baseline ({b} runs) then make gate ({c} runs): disjoint blocks, baseline earlier")
    report += simulate(df, order, partition(len(order), b, c), config).lines(
        "the same, strict partition (no run used twice)")
    r = args.ab_rounds
    report += simulate(df, order, ab_windows(len(order), r, disjoint=False), config).lines(
        f"bench ab --rounds {r}, identical environments: sliding windows of {2 * r} runs dealt A B A B")
    report += simulate(df, order, ab_windows(len(order), r, disjoint=True), config).lines(
        "the same, disjoint windows")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
