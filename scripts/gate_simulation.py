"""Measure the regression gate on real runs: A/A false alarms, injected slowdowns, and `bench ab`.

A benchmark, not a test. It needs a pool of real quick-suite runs of unchanged code on this
machine, made as `make baseline` / `make gate` make them (`--threads 1 --budget 0.3`; it makes
more with `bench run --processes N` when the pool is short). The unit is the process: each
interleaved round of fresh processes of a run (process p of every framework) is one unit, a
run without the process column one unit (`as_process_units`); units are taken in the order
they were made, and each process is counted once however often its file lies in the pool.

* Gate runs as CI makes them: `make baseline` once (committed), then every CI job's `make gate`
  judged against it. The first K*B runs of the pool form K baseline blocks of B consecutive runs;
  the rest are cut into disjoint gate blocks of C consecutive runs; every gate block is judged
  against every baseline block. No real run serves two gate blocks, and no gate block shares a
  run with a baseline.
* A/A: with no code change, a gate run that exits 1 is a false alarm.
* Injected slowdowns: the candidate's samples of every case multiplied by 1.10 and 1.25
  (each case's verdict depends only on its own figures, the baseline's spreads and the
  number of cases, so slowing all at once equals slowing one at a time). A case counts
  where, in that draw, it states it can detect the slowdown (`detectable` ≤ 10% / 25%).
* `bench ab` with identical environments: windows of 2R consecutive runs dealt A B A B ….

usage: .venv/bin/python scripts/gate_simulation.py [--pool results/pool] [--runs 0] [--until HH:MM]
           [--baseline-blocks 2] [--baseline-runs 3] [--candidate-runs 2] [--ab-rounds 5] [--trials 60]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gate.compare import EXIT_REGRESSION, FIGURES, SLOWER, GateConfig, compare  # noqa: E402
from bench.processes import dedupe  # noqa: E402
from bench.results import KEY_COLUMNS  # noqa: E402

BENCH = Path(sys.executable).with_name("bench")
FACTORS = ((1.25, 0.25), (1.10, 0.10))  # injected slowdown, and the detectable it must be caught at


def read_pool(pool: Path) -> tuple[pd.DataFrame, list[str]]:
    """The pool's rows, and its complete runs in the order they were made (every parquet file
    under `pool`, so runs that `make baseline`, `make gate` and `bench ab` wrote count too).
    A run with fewer than 80% of the largest run's rows (one still being written) is dropped,
    and only the cases every remaining run measured are kept (`bench ab` runs lack none of the
    gate's cases, but other runs may)."""
    frames = [pq.read_table(f).to_pandas().assign(source=str(f)) for f in sorted(pool.rglob("*.parquet"))]
    if not frames:
        return pd.DataFrame(), []
    df = as_process_units(dedupe(pd.concat(frames, ignore_index=True)))
    counts = df.groupby("run_id").size()
    complete = counts[counts >= 0.8 * counts.max()].index
    df = df[df["run_id"].isin(complete)]
    keys = df[list(KEY_COLUMNS)].astype(str).agg("|".join, axis=1)
    runs_per_key = keys.groupby(keys).transform(lambda k: df.loc[k.index, "run_id"].nunique())
    df = df[runs_per_key == len(complete)]
    started = df.groupby("run_id")["timestamp"].min().sort_values()
    return df, list(started.index)


def as_process_units(df: pd.DataFrame) -> pd.DataFrame:
    """One unit per interleaved round of fresh processes: the rows of process p of a run (every
    framework's process p, as `bench run --processes N` makes them, A1 B1 C1 A2 B2 C2 …) become
    the run `RUN#p`, so the blocks below are blocks of consecutive processes: `make baseline`'s
    BASELINE_PROCESSES, `make gate`'s GATE_PROCESSES. A run without the process column is one
    unit, as it was one process per framework."""
    out = df.copy()
    out["run_id"] = [f"{run}#p{p}" for run, p in zip(out["run_id"], out["process"])]
    out["process"] = 0
    return out


def make_runs(pool: Path, n: int, args: argparse.Namespace) -> None:
    """Adds up to `n` real runs to the pool, each with its own run id and file, and logs the
    time, the load average and the duration of each to pool/log.txt (timings on a shared
    machine mean little without the load). With --until HH:MM (UTC) it starts no run that
    would, at the last run's duration, end after that time."""
    pool.mkdir(parents=True, exist_ok=True)
    last = 0.0
    for i in range(n):
        if args.until:
            now = time.gmtime()
            left = (int(args.until[:2]) * 60 + int(args.until[3:])) * 60 - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
            if left < last:
                print(f"stop: {left:.0f} s left before {args.until} UTC, a run takes ~{last:.0f} s", flush=True)
                return
        run_id = f"pool-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        cmd = [str(BENCH), "run", "--suite", "quick", "--out", str(pool), "--run-id", run_id, "--processes",
               str(args.processes), "--threads", str(args.threads), "--budget", str(args.budget), "--timing", "queued"]
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
        print(f"[{i + 1}/{n}] {' '.join(cmd)}", flush=True)
        start = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        last = time.monotonic() - start
        with (pool / "log.txt").open("a") as log:
            log.write(f"{run_id} start {time.strftime('%H:%M:%S', time.gmtime(time.time() - last))} UTC "
                      f"load-before {' '.join(load)} duration {last:.1f} s\n")


def pool_noise(df: pd.DataFrame, order: list[str], figure: str) -> list[str]:
    """What the pool says about the noise itself: each case's between-process SD over every
    run, and how often a process lands ≥ 15% above its case's median (a slow state), and
    whether such processes come in runs (the next run slow too: an episode, which a block of
    consecutive runs cannot tell from a regression)."""
    ok = df[df["status"] == "ok"]
    fig = ok["samples_s"].map(lambda s: float(FIGURES[figure](np.asarray(s))))
    case = ok[list(KEY_COLUMNS)].astype(str).agg("|".join, axis=1)
    table = pd.DataFrame({"case": case, "run": ok["run_id"], "fw": ok["framework"], "log": np.log(fig)})
    wide = table.pivot_table(index="case", columns="run", values="log")[order]
    fw = table.groupby("case")["fw"].first()
    sd = wide.std(axis=1)
    slow = wide.sub(wide.median(axis=1), axis=0) > np.log(1.15)
    paired = (slow & (slow.shift(1, axis=1, fill_value=False) | slow.shift(-1, axis=1, fill_value=False))).sum().sum()
    lines = ["between-process SD of log figures over the pool (median · 90th percentile of the cases): " + ", ".join(
        f"{name} {np.expm1(s.median()):.1%} · {np.expm1(s.quantile(0.9)):.1%}" for name, s in sd.groupby(fw))]
    lines.append(f"processes ≥ 15% above their case's median: {int(slow.sum().sum())} of {slow.size} "
                 f"({slow.sum().sum() / slow.size:.1%}); {int(paired)} of them next to another such run of the same case")
    return lines


def ci_protocol(n_runs: int, blocks: int, b: int, c: int) -> list[tuple[range, range]]:
    """(baseline block, gate block) pairs as CI makes them: `blocks` baseline blocks of b runs
    first, then every disjoint later block of c runs, each judged against each baseline."""
    bases = [range(i * b, (i + 1) * b) for i in range(blocks)]
    gates = [range(j, j + c) for j in range(blocks * b, n_runs - c + 1, c)]
    return [(base, gate) for base in bases for gate in gates]


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
        self.first_red = 0  # before confirmation
        self.flagged = 0  # cases the first looks found slower
        self.confirm_runs = 0  # bench runs (framework, workload, dtype, mode) confirming them, per confirming round
        self.red_by_fw: dict[str, int] = defaultdict(int)
        self.by_baseline: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # baseline block → red, runs
        self.cannot_judge = 0
        self.alarm_cases: dict[str, int] = defaultdict(int)
        self.judged: dict[str, int] = defaultdict(int)  # framework → cases judged (summed over runs)
        self.stating: dict[tuple[str, float], int] = defaultdict(int)  # (fw, limit) → cases stating ≤ limit
        self.caught: dict[tuple[str, float], int] = defaultdict(int)
        self.tried: dict[tuple[str, float], int] = defaultdict(int)  # (fw, limit) → slowed cases stating ≤ limit
        self.per_case: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0])  # (label, factor) → caught, tried

    def aa(self, first, result, baseline: str) -> None:
        """`first`: the first look, whose statements count; `result`: the final verdicts."""
        self.runs += 1
        self.first_red += first.exit_code == EXIT_REGRESSION
        flagged = first.by_verdict(SLOWER)
        self.flagged += len(flagged)
        self.confirm_runs += len({(c.key["framework"], c.key["workload"], c.key["dtype"], c.key["mode"]) for c in flagged})
        red = result.exit_code == EXIT_REGRESSION
        self.red += red
        self.by_baseline[baseline][0] += red
        self.by_baseline[baseline][1] += 1
        self.cannot_judge += result.exit_code == 2
        for fw in {c.key["framework"] for c in result.by_verdict(SLOWER)}:
            self.red_by_fw[fw] += 1
        for c in result.by_verdict(SLOWER, "faster"):
            self.alarm_cases[f"{c.verdict} {c.label} ({c.ratio:.2f}×, bar {c.bar:+.0%})"] += 1
        for c in first.judged:
            self.judged[c.key["framework"]] += 1
            for _, limit in FACTORS:
                self.stating[(c.key["framework"], limit)] += c.detectable <= limit

    def injected(self, first, final, factor: float, limit: float) -> None:
        """A case counts where its first look stated it detects `limit` (what it says before any
        confirmation), and is caught where the final verdict is `slower`."""
        verdicts = {c.label: c.verdict for c in final.cases}
        for c in first.judged:
            if c.detectable <= limit:
                hit = verdicts.get(c.label) == SLOWER
                self.tried[(c.key["framework"], limit)] += 1
                self.caught[(c.key["framework"], limit)] += hit
                self.per_case[(c.label, factor)][0] += hit
                self.per_case[(c.label, factor)][1] += 1

    def lines(self, title: str) -> list[str]:
        fws = sorted(self.judged)
        total = sum(self.judged.values())
        out = [f"\n{title}: {self.runs} simulated gate runs",
               f"  A/A whole gate red (exit 1): {self.red}/{self.runs} = {self.red / max(self.runs, 1):.1%}"
               + (f" (before confirmation: {self.first_red}/{self.runs})" if self.first_red != self.red else "")
               + (f"; cannot judge (exit 2): {self.cannot_judge}" if self.cannot_judge else "")]
        if self.first_red != self.red:
            out.append(f"  first looks flagged {self.flagged / self.runs:.1f} cases per gate run on average, "
                       f"{self.confirm_runs / self.runs:.1f} confirming bench runs per round")
        if 1 < len(self.by_baseline) < self.runs:
            out.append("  per baseline block: " + ", ".join(f"{name} {red}/{n}" for name, (red, n) in self.by_baseline.items()))
        out.append("  red because of: " + ", ".join(f"{fw} {self.red_by_fw[fw]}/{self.runs}" for fw in fws))
        for label, n in sorted(self.alarm_cases.items(), key=lambda kv: (not kv[0].startswith(SLOWER), -kv[1]))[:8]:
            out.append(f"    {n:3d}× {label}")
        cases = total / max(self.runs, 1)
        for factor, limit in FACTORS:
            stating = sum(self.stating[(fw, limit)] for fw in fws)
            caught = sum(self.caught[(fw, limit)] for fw in fws)
            tried = sum(self.tried[(fw, limit)] for fw in fws)
            out.append(f"  cases stating ≤ {limit:.0%}: {stating / max(total, 1):.0%} of {cases:.0f} judged "
                       f"({', '.join(f'{fw} {self.stating[(fw, limit)] / max(self.judged[fw], 1):.0%}' for fw in fws)}); "
                       f"×{factor:.2f} caught in {caught}/{tried} = {caught / max(tried, 1):.1%} "
                       f"({', '.join(f'{fw} {self.caught[(fw, limit)] / max(self.tried[(fw, limit)], 1):.0%}' for fw in fws)})")
            need = 0.9 if factor > 1.2 else 0.8
            rates = sorted((hit / n, n, lab) for (lab, f), (hit, n) in self.per_case.items() if f == factor)
            below = [r for r in rates if r[0] < need]
            out.append(f"    per case: {len(rates) - len(below)} of {len(rates)} cases caught in ≥ {need:.0%} of the "
                       f"trials where they stated ≤ {limit:.0%}" + ("; below: " if below else "")
                       + "; ".join(f"{lab} {rate:.0%} of {n}" for rate, n, lab in below[:6]))
        return out


def _keys(rows: pd.DataFrame) -> pd.Series:
    return rows[list(KEY_COLUMNS)].astype(str).agg("|".join, axis=1)


def confirmed(base: pd.DataFrame, cand: pd.DataFrame, result, extra: pd.DataFrame | None, config: GateConfig,
              factor: float = 1.0):
    """The gate's verdicts after confirming its alarms: when cases are `slower`, the next runs
    (`extra`, made after the gate block, as `make gate` re-runs the flagged cases) add their
    processes for those cases only and everything is judged again. Without further runs in the
    pool the first verdicts stand."""
    flagged = {"|".join(map(str, (c.key[k] for k in KEY_COLUMNS))) for c in result.by_verdict(SLOWER)}
    if not flagged or extra is None or extra.empty:
        return result
    more = extra[_keys(extra).isin(flagged)]
    return compare(base, pd.concat([cand, slowed(more, factor) if factor != 1.0 else more]), config)


def simulate(df: pd.DataFrame, order: list[str], pairs: list[tuple[range, range]], config: GateConfig,
             inject: bool = True, confirm: int = 0) -> Tally:
    """`confirm` > 0: each alarm is confirmed with that many later runs of the flagged cases, as
    make gate does: its first look takes the bar from the baseline's spread alone, the
    confirmation look from both sides' (GateConfig.candidate_spread)."""
    look = replace(config, candidate_spread=False) if confirm else config
    tally = Tally()
    by_run = {run: part for run, part in df.groupby("run_id")}
    for b_idx, c_idx in pairs:
        base = pd.concat([by_run[order[i]] for i in b_idx])
        cand = pd.concat([by_run[order[i]] for i in c_idx])
        later = [order[i] for i in range(c_idx.stop, min(c_idx.stop + confirm, len(order))) if i not in b_idx]
        extra = pd.concat([by_run[r] for r in later]) if confirm and len(later) == confirm else None
        first = compare(base, cand, look)
        tally.aa(first, confirmed(base, cand, first, extra, config) if confirm else first,
                 f"runs {b_idx.start + 1}-{b_idx.stop}")
        if inject:
            for factor, limit in FACTORS:
                hit = compare(base, slowed(cand, factor), look)
                final = confirmed(base, slowed(cand, factor), hit, extra, config, factor) if confirm else hit
                tally.injected(hit, final, factor, limit)
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
    ap.add_argument("--until", default="", metavar="HH:MM", help="with --runs: start no run that would end after this UTC time")
    ap.add_argument("--make-only", action="store_true", help="with --runs: make the runs, simulate nothing")
    ap.add_argument("--threads", type=int, default=1, help="--threads of new runs (default 1, as make gate)")
    ap.add_argument("--budget", type=float, default=0.3, help="--budget of new runs (default 0.3, as make gate)")
    ap.add_argument("--processes", type=int, default=5, help="--processes of each new run (default 5)")
    ap.add_argument("--baseline-blocks", type=int, default=2, help="baseline blocks at the pool's start (default 2)")
    ap.add_argument("--baseline-runs", type=int, default=3, help="make baseline's BASELINE_PROCESSES (default 3)")
    ap.add_argument("--candidate-runs", type=int, default=2, help="make gate's GATE_PROCESSES (default 2)")
    ap.add_argument("--ab-rounds", type=int, default=5, help="bench ab --rounds (default 5; 0: no bench ab view)")
    ap.add_argument("--trials", type=int, default=60, help="most sliding bench ab windows to simulate")
    ap.add_argument("--figure", choices=("min", "median"), default=GateConfig.figure, help="per-process figure")
    ap.add_argument("--confirm", type=int, default=0, metavar="N",
                    help="confirm each make-gate alarm with the next N runs of the flagged cases (default 0: no)")
    ap.add_argument("--no-candidate-spread", action="store_true",
                    help="the bar from the baseline's spread alone (GateConfig.candidate_spread=False)")
    ap.add_argument("--prior-df", default="estimate", metavar="DF|estimate",
                    help="the spread prior's degrees of freedom, or 'estimate' (default, as the gate)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    if args.runs:
        make_runs(args.pool, args.runs, args)
        if args.make_only:
            return 0
    df, order = read_pool(args.pool)
    need = args.baseline_blocks * args.baseline_runs + args.candidate_runs
    if len(order) < need:
        print(f"pool {args.pool}: {len(order)} complete runs, need at least {need}")
        return 2
    prior_df = None if args.prior_df == "estimate" else float(args.prior_df)
    config = GateConfig(figure=args.figure, prior_df=prior_df, candidate_spread=not args.no_candidate_spread)
    ok = df[(df["status"] == "ok") & df["run_id"].isin(order[:1])]
    print(f"pool {args.pool}: {len(order)} complete real runs, {len(ok)} timed cases each; "
          f"gate = {args.baseline_runs} baseline runs vs {args.candidate_runs} candidate runs; "
          f"per-process figure {config.figure}; prior df {config.prior_df or 'estimated'}; family-wise alpha {config.alpha}, floor {config.threshold:.0%}, "
          f"detectable at {config.power:.0%} power")
    print("\n".join(pool_noise(df, order, config.figure)))
    rng = np.random.default_rng(args.seed)
    k, b, c = args.baseline_blocks, args.baseline_runs, args.candidate_runs
    report = []
    pairs = ci_protocol(len(order), k, b, c)
    report += simulate(df, order, pairs, config, confirm=args.confirm).lines(
        f"CI: make baseline ({k} blocks of {b} runs, the pool's first), then make gate ({len(pairs) // max(k, 1)} "
        f"disjoint later blocks of {c} runs), each gate block against each baseline"
        + (f"; alarms confirmed by the next {args.confirm} runs" if args.confirm else ""))
    r = args.ab_rounds
    if not r:
        print("\n".join(report))
        return 0
    report += simulate(df, order, ab_windows(len(order), r, disjoint=True), config).lines(
        f"bench ab --rounds {r}, identical environments: disjoint windows of {2 * r} consecutive runs dealt A B A B")
    sliding = ab_windows(len(order), r, disjoint=False)
    if len(sliding) > args.trials:
        sliding = [sliding[i] for i in sorted(rng.choice(len(sliding), size=args.trials, replace=False))]
    report += simulate(df, order, sliding, config).lines("the same, sliding windows (they share runs)")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
