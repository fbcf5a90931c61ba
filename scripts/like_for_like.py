"""Two ways a "same dtype, same op" comparison lies, measured through the suite itself.

1. fp32 vs tf32 matmul at 4096³: the math mode each framework was given, the error
   against float64, the effective precision the classifier read from it, and the time.
2. latency (one call + barrier) vs queued (k calls, one barrier) for small matmul and
   attention cases, where dispatch and synchronisation dominate.

    python scripts/like_for_like.py --device cuda -f torch,jax,mlx --out results/like-for-like
Rows go to a parquet file like any run (`bench show` reads it); a table is printed last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fmt import fmt_time  # noqa: E402
from bench.measure import Protocol  # noqa: E402
from bench.plan import plan  # noqa: E402
from bench.results import ResultsWriter  # noqa: E402
from bench.runner import Runner, RunConfig, new_run_id  # noqa: E402
from bench.summary import describe_params  # noqa: E402

PRECISION_CASE = {"m": 4096, "n": 4096, "k": 4096}
DISPATCH_MATMULS = [{"m": 32, "n": 128, "k": 1000}, {"m": 64, "n": 32, "k": 256}]
DISPATCH_SDPA = [{"batch": 64, "heads": 8, "seq": 64, "head_dim": 128, "causal": False}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--frameworks", default="torch,jax,mlx")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("results/like-for-like"))
    ap.add_argument("--budget", type=float, default=1.0)
    args = ap.parse_args()
    fws = args.frameworks.split(",")
    cases = []
    for fw in fws:
        cases += plan([fw], ["matmul"], ["fp32", "tf32"], "full", [PRECISION_CASE])
        cases += plan([fw], ["matmul"], ["fp32"], "full", DISPATCH_MATMULS)
        cases += plan([fw], ["sdpa"], ["fp32"], "full", DISPATCH_SDPA)
    run_id = new_run_id()
    writer = ResultsWriter(args.out / f"{run_id}.parquet")
    config = RunConfig(suite="custom", device=args.device, protocol=Protocol(budget_s=args.budget))
    rows = Runner(config, writer, run_id, on_row=lambda c, r: print(f"  {c.label}: {r['status']}", flush=True)).run(cases)
    print(f"\nrows: {writer.path}")
    print(f"{'framework':<10} {'case':<24} {'dtype':<5} {'math mode':<44} {'max rel err':>11} {'precision':<11}"
          f" {'latency':>9} {'queued':>9} {'overhead':>9}  status")
    for r in rows:
        err = f"{r['max_rel_error']:.1e}" if r.get("max_rel_error") is not None else "—"
        print(f"{r['framework']:<10} {r['workload'] + ' ' + describe_params(r['params']):<24} {r['dtype']:<5} "
              f"{str(r.get('math_mode') or '—'):<44} {err:>11} {str(r.get('effective_precision') or '—'):<11} "
              f"{fmt_time(r.get('latency_median_s')):>9} {fmt_time(r.get('queued_median_s')):>9} "
              f"{fmt_time(r.get('dispatch_overhead_s')):>9}  {r['status']} {r.get('reason') or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
