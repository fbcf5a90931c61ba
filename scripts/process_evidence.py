"""Does the suite's figure over fresh processes agree with a direct script's over fresh processes?

The held-out check of the process-as-unit change, in one device call. Per framework and
case, in interleaved rounds (round r: the suite's process r of every framework, then a
direct process of every framework), so drift and the host's speed states hit both sides alike:

* suite side — `bench.runner.Runner` over `bench.plan.interleave(cases, 1)` with process
  index r: the worker's own code path (check, warm-up, queue-depth sweep, adaptive sampling),
  queued timing, energy off. After the last round this is exactly what `bench run
  --processes R` writes, and its headline comes from `bench.processes.headline`.
* direct side — a fresh process per framework and round runs the call written against the
  framework's own API (bench.direct's `direct_op` and `deep_queue`: shares no timing
  code with the suite), timed with `timeit` around a deep queue closed by one barrier; the
  process's figure is the median of its repeats.

Prints per case: the suite's median of process medians and its between-process 95% interval
(bench.stats.process_interval), the direct side's, whether each interval contains the
other's median, and for the large cases each interval's half-width (target: within ±3%).
`--deadline` stops starting rounds after that many seconds and prints what it has, so the
table comes back inside a 600 s device call. `--smoke` runs tiny shapes on the CPU.

    python3 scripts/process_evidence.py --device cuda -f torch,jax,mlx --out $OUT   # ~100 s a round on an H200: ~500 s
    .venv/bin/python scripts/process_evidence.py --smoke --out /tmp/pe
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SMALL = [("matmul", {"m": 16, "n": 4096, "k": 4096}, "bf16"),
         ("sdpa", {"batch": 64, "heads": 8, "seq": 64, "head_dim": 128, "causal": False}, "bf16"),
         ("stream", {"n": 2**23}, "fp32")]
LARGE = [("matmul", {"m": 8192, "n": 8192, "k": 8192}, "bf16"),
         ("sdpa", {"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": False}, "bf16")]
SMOKE = [("matmul", {"m": 16, "n": 256, "k": 256}, "fp32"), ("stream", {"n": 2**16}, "fp32")]
LARGE_TARGET = 0.03  # the large cases' intervals: within ±3%


def label(workload: str, p: dict, dtype: str) -> str:
    from bench.summary import describe_params
    from workloads import params_key

    return f"{workload} {describe_params(params_key(p))} {dtype}"


# -- the direct side (a child process) --------------------------------------------------------
def child_direct(framework: str, device: str, cases: list[tuple], repeat: int, warmup_s: float = 0.0) -> list[dict]:
    """One fresh process: every case's deep-queue figure, as `bench fidelity`'s direct side
    measures it (`bench.direct.measure_process`; `warmup_s` of untimed deep batches first,
    since a power-capped GPU kernel reads its burst clock in its first ~0.1 s)."""
    from bench.direct import measure_process

    rows = measure_process(framework, device, cases, repeat, warmup_s)
    return [{**{k: v for k, v in r.items() if k not in ("workload", "params", "dtype")},
             "case": label(r["workload"], r["params"], r["dtype"])} for r in rows]


def spawn_direct(framework: str, args: argparse.Namespace, cases: list[tuple]) -> list[dict] | str:
    from bench.direct import run_child

    started = time.perf_counter()
    cmd = [sys.executable, __file__, "--child-direct", framework, "--device", args.device, "--repeat", str(args.repeat),
           "--direct-warmup-s", str(args.direct_warmup_s), "--select", args.select]
    cmd += ["--smoke"] if args.smoke else []
    got = run_child(cmd, dict(os.environ), "PROCESS_EVIDENCE")
    if isinstance(got, list):
        for row in got:
            row["process_wall_s"] = time.perf_counter() - started
    return got


# -- the parent -------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench import measure
    from bench.plan import Case
    from bench.results import ResultsWriter
    from bench.runner import Runner, RunConfig

    cases = chosen(args)
    frameworks = args.frameworks.split(",")
    config = RunConfig(suite="full", device=args.device, timings=("queued",), case_timeout_s=180.0,
                       protocol=measure.Protocol(budget_s=args.budget, energy=False))
    args.out.mkdir(parents=True, exist_ok=True)
    writer = ResultsWriter(args.out / "suite.parquet")
    runner = Runner(config, writer, "process-evidence")
    direct: dict[str, list[list[dict]]] = {fw: [] for fw in frameworks}
    rounds_done, started, notes, last = 0, time.monotonic(), [], 0.0
    for r in range(args.processes):
        if r and time.monotonic() - started + last > args.deadline:  # the next round would end past it
            notes.append(f"deadline {args.deadline:g} s: stopped after {r} rounds ({last:.0f} s a round)")
            break
        t0 = time.monotonic()
        runner.run([Case(fw, w, p, d, "eager", process=r) for fw in frameworks for (w, p, d) in cases])
        t1 = time.monotonic()
        for fw in frameworks:
            got = spawn_direct(fw, args, cases)
            if isinstance(got, str):
                notes.append(f"{fw} direct process {r}: failed: {got[:200]}")
            else:
                direct[fw].append(got)
        rounds_done += 1
        last = time.monotonic() - t0
        print(f"round {r}: suite {t1 - t0:.1f} s, direct {time.monotonic() - t1:.1f} s", flush=True)
        report({"rows": writer.rows, "direct": direct, "rounds": rounds_done, "notes": notes,  # a kill keeps this much
                "large": [label(*c) for c in LARGE], "wall_s": time.monotonic() - started}, args.out, final=False)
    return {"rows": writer.rows, "direct": direct, "rounds": rounds_done, "notes": notes,
            "large": [label(*c) for c in LARGE], "wall_s": time.monotonic() - started}


def report(result: dict[str, Any], out: Path, final: bool = True) -> None:
    """Write evidence.json and print the table; after every round too (final=False: the table
    only), so a call that runs out of time still returns what it measured."""
    pairs, lines = table(result)
    (out / "evidence.json").write_text(json.dumps({"pairs": pairs, "direct": result["direct"], "notes": result["notes"],
                                                   "rounds": result["rounds"], "wall_s": result["wall_s"]}, indent=1))
    shown = [*result["notes"], *costs(result), f"{result['rounds']} rounds in {result['wall_s']:.0f} s", *lines] if final else lines
    print("\n".join(shown), flush=True)


def table(result: dict[str, Any]) -> tuple[list[dict], list[str]]:
    import pandas as pd

    from bench.processes import headline
    from bench.stats import summarize_processes

    rows = pd.DataFrame(result["rows"])
    lines, out = [], []
    lines.append(f"{'framework':<7}{'case':<34}{'suite µs [95%]':>28}{'n':>3}{'direct µs [95%]':>28}{'n':>3}"
                 f"{'s∋d':>5}{'d∋s':>5}{'±suite':>8}{'±direct':>8}")
    heads = headline(rows[rows["status"] == "ok"]) if len(rows) else rows
    for fw, runs in result["direct"].items():
        for i, case in enumerate(runs[0] if runs else []):
            name = case["case"]
            d = summarize_processes([run[i]["queued"] for run in runs if i < len(run)])
            match = [h for _, h in heads.iterrows() if h["framework"] == fw and
                     label(h["workload"], json.loads(h["params"]), h["dtype"]) == name] if len(heads) else []
            if not match:
                lines.append(f"{fw:<7}{name[:33]:<34}{'no ok suite row':>28}")
                continue
            h = match[0]
            s_med, s_lo, s_hi = h["median_s"], h["process_low_s"], h["process_high_s"]
            s_in = s_lo <= d.median <= s_hi
            d_in = d.low <= s_med <= d.high
            half_s = max(s_hi / s_med - 1, 1 - s_lo / s_med)
            half_d = max(d.high / d.median - 1, 1 - d.low / d.median)
            row = {"framework": fw, "case": name, "suite": [s_med, s_lo, s_hi], "suite_n": int(h["n_processes"]),
                   "direct": [d.median, d.low, d.high], "direct_n": d.n, "suite_contains_direct": bool(s_in),
                   "direct_contains_suite": bool(d_in), "suite_half": half_s, "direct_half": half_d,
                   "large": name in result["large"]}
            out.append(row)

            def us(lo: float, med: float, hi: float) -> str:
                return f"{med * 1e6:.4g} [{lo * 1e6:.4g}–{hi * 1e6:.4g}]"

            lines.append(f"{fw:<7}{name[:33]:<34}{us(s_lo, s_med, s_hi):>28}{h['n_processes']:>3}{us(d.low, d.median, d.high):>28}"
                         f"{d.n:>3}{'yes' if s_in else 'NO':>5}{'yes' if d_in else 'NO':>5}{half_s:>8.1%}{half_d:>8.1%}")
    both = sum(r["suite_contains_direct"] and r["direct_contains_suite"] for r in out)
    lines.append(f"{both}/{len(out)} pairs: each interval contains the other side's median")
    large = [r for r in out if r["large"]]
    if large:
        within = sum(r["suite_half"] <= LARGE_TARGET and r["direct_half"] <= LARGE_TARGET for r in large)
        lines.append(f"{within}/{len(large)} large-case pairs with both intervals within ±{LARGE_TARGET:.0%}")
    return out, lines


def costs(result: dict[str, Any]) -> list[str]:
    """Per-process costs on each side: what one fresh process of a framework took."""
    import pandas as pd

    lines = []
    rows = pd.DataFrame(result["rows"])
    if len(rows):
        per = rows.groupby(["framework", "process"])["case_wall_s"].sum().groupby("framework").median()
        first = rows.groupby("framework")["first_call_s"].median()
        for fw in per.index:
            lines.append(f"suite {fw}: {per[fw]:.1f} s of cases per process (first case includes worker start); "
                         f"median first call {first[fw] * 1e3:.1f} ms")
    for fw, runs in result["direct"].items():
        if runs:
            lines.append(f"direct {fw}: {statistics.median(r[0]['process_wall_s'] for r in runs):.1f} s per process")
    return lines


def chosen(args: argparse.Namespace) -> list[tuple]:
    """The cases of this call: every one, or those whose label contains one of `--select`'s words."""
    cases = SMOKE if args.smoke else SMALL + LARGE
    words = [w for w in args.select.split(",") if w]
    return [c for c in cases if not words or any(w in label(*c) for w in words)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-f", "--frameworks", default="torch,jax,mlx")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--processes", type=int, default=5, help="fresh processes per side and framework (default 5)")
    ap.add_argument("--budget", type=float, default=0.3, help="suite sampling seconds per case (default 0.3)")
    ap.add_argument("--repeat", type=int, default=7, help="deep-queue batches per direct case (default 7)")
    ap.add_argument("--deadline", type=float, default=540.0,
                    help="start no round that would end after this many seconds, by the last round's length (default 540)")
    ap.add_argument("--direct-warmup-s", type=float, default=0.0,
                    help="untimed deep batches per direct case before its repeats (default 0: the first calls' 0.1 s)")
    ap.add_argument("--select", default="", help="only cases whose label contains one of these comma-separated words")
    ap.add_argument("--out", type=Path, default=Path("/tmp/process-evidence"))
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, to check the script here")
    ap.add_argument("--child-direct", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.device = "cpu"
    if args.child_direct:
        print("PROCESS_EVIDENCE " + json.dumps(child_direct(args.child_direct, args.device, chosen(args), args.repeat,
                                                            args.direct_warmup_s)), flush=True)
        return 0
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    result = run(args)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
