"""Small, dispatch-bound ops on a GPU: is the suite's queued figure the deep-queue figure,
and does it hold from run to run? Plus decode attention in GB/s against the copy ceiling.

For each framework (torch, JAX, MLX) and round, one fresh process (as the suite's worker):
  * the small cases of issue 16 (matmul 16×4096·4096², sdpa 64×8×64×128, an elementwise
    op of ~10 µs, all bf16) through the worker's own code path (`bench.worker.run_case`:
    check, latency, the queue-depth sweep to its plateau, device time where events exist),
    then in the same process a direct deep-queue measurement written against the
    framework's own API (scripts/fidelity.py's `direct_op`, 1024 calls per barrier);
  * in the first round also decode attention (one token against 512, 4k and 32k cached
    tokens, 14/2 and 32/8 heads) and the copy ceiling (the `stream` workload at 1 GiB).

The parent prints: suite queued per round, its spread across rounds (target ≤ 5%), the
suite/direct ratio per round (target within 10%), and the decode rows' GB/s with the
fraction of that framework's measured copy ceiling.

    python scripts/small_ops.py --device cuda -f torch,jax,mlx --rounds 3 --json $OUT/small_ops.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.argtypes import cpu_list  # noqa: E402
from bench.catalog import FRAMEWORKS  # noqa: E402
from fidelity import run_child  # noqa: E402

SMALL = [
    ("matmul", {"m": 16, "n": 4096, "k": 4096}, "bf16"),
    ("sdpa", {"batch": 64, "heads": 8, "seq": 64, "head_dim": 128, "causal": False}, "bf16"),
    ("stream", {"n": 1 << 23}, "bf16"),  # 32 MiB moved: ~10 µs at H200 bandwidth
]
DECODE = [{"batch": 1, "heads": h, "kv_heads": kvh, "q_len": 1, "kv_len": n, "head_dim": d}
          for n in (512, 4096, 32768) for h, kvh, d in ((14, 2, 64), (32, 8, 128))]
CEILING = ("stream", {"n": 1 << 27}, "bf16")  # 256 MiB read + 256 MiB written, far past the L2


def child(framework: str, device: str, budget: float, first_round: bool) -> dict[str, Any]:
    from fidelity import direct_op, time_direct

    from bench.plan import CaseMessage
    from bench.worker import run_case

    module, _, cls = FRAMEWORKS[framework].adapter.partition(":")
    adapter = getattr(__import__(module, fromlist=[cls]), cls)(device=device)

    def suite(workload: str, p: dict, dtype: str) -> dict[str, Any]:
        try:
            r = run_case(adapter, CaseMessage.from_json({"workload": workload, "params": p, "dtype": dtype, "protocol": {"budget_s": budget}}))
        except Exception as exc:  # one failing case must not cost the others
            adapter.release()
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        keys = ("latency_median_s", "queued_median_s", "queue_depth", "queue_curve_k", "queue_curve_s", "queue_stop",
                "device_median_s", "device_time_note", "gbps", "bytes_moved", "correct", "max_rel_error", "implementation")
        return {k: r.get(k) for k in keys}

    out: dict[str, Any] = {"backend": adapter.backend, "small": [], "decode": [], "ceiling": None}
    for workload, p, dtype in SMALL:
        # suite, direct, suite, direct in this process: drift within it hits both sides
        row = suite(workload, p, dtype)
        if "error" in row:
            print(f"{framework} {workload}: {row['error']}", file=sys.stderr)
            continue
        call, start, barrier, out_bytes = direct_op(framework, workload, p, dtype, device)
        first = time_direct(call, start, barrier, out_bytes)
        row["suite2"] = suite(workload, p, dtype).get("queued_median_s")
        second = time_direct(call, start, barrier, out_bytes)
        row["direct"] = {**first, "queued": statistics.median([first["queued"], second["queued"]]),
                         "queued_each": [first["queued"], second["queued"]]}
        row["case"] = f"{workload} " + " ".join(f"{k}={v}" for k, v in p.items())
        out["small"].append(row)
    if first_round:
        for p in DECODE:
            out["decode"].append({"params": p, **suite("decode_attention", p, "bf16")})
        out["ceiling"] = suite(*CEILING)
    return out


def spawn(framework: str, args: argparse.Namespace, first_round: bool) -> dict[str, Any] | str:
    cmd = [sys.executable, __file__, "--child", framework, "--device", args.device, "--budget", str(args.budget)]
    if args.cpus:  # bound as `bench run --cpus` binds its workers (before the framework starts threads)
        cmd = ["taskset", "-c", ",".join(map(str, args.cpus))] + cmd
    if first_round:
        cmd.append("--first-round")
    env = {**os.environ, **FRAMEWORKS[framework].worker_env("bf16")}
    return run_child(cmd, env, "SMALLOPS")


def us(x: float | None) -> str:
    return "—" if x is None else f"{x * 1e6:.1f}"


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    print(f"\n{'fw':<7}{'case':<52}{'latency':>9}{'queued per round (µs)':>26}{'spread':>8}{'direct deep':>12}"
          f"{'suite/direct per round':>26}{'k':>12}{'device':>9}")
    for fw, rounds in results.items():
        for i, first in enumerate(rounds[0]["small"]):
            rows = [r["small"][i] for r in rounds]
            queued = [r["queued_median_s"] for r in rows]
            direct = [r["direct"]["queued"] for r in rows]
            spread = max(queued) / min(queued) - 1
            ratios = [q / d for q, d in zip(queued, direct)]
            second = [r.get("suite2") for r in rows]
            if all(second):
                ratios2 = [q / d for q, d in zip(second, direct)]
                within = sum(abs(x - 1) <= 0.10 for x in ratios + ratios2)
                print(f"{fw:<7}{first['case'][:51]:<52} second suite run per round: {' / '.join(us(q) for q in second)}"
                      f"  ratio {' / '.join(f'{x:.3f}' for x in ratios2)}; within 10% of direct: {within}/{len(ratios) * 2}")
            print(f"{fw:<7}{first['case'][:51]:<52}{us(statistics.median(r['latency_median_s'] for r in rows)):>9}"
                  f"{' / '.join(us(q) for q in queued):>26}{spread:>8.1%}{us(statistics.median(direct)):>12}"
                  f"{' / '.join(f'{x:.3f}' for x in ratios):>26}{'/'.join(str(r['queue_depth']) for r in rows):>12}"
                  f"{us(first['device_median_s']):>9}")
    print("\nqueue-depth curves, round 1 (k: µs per call)")
    for fw, rounds in results.items():
        for r in rounds[0]["small"]:
            curve = ", ".join(f"{k}: {s * 1e6:.1f}" for k, s in zip(r["queue_curve_k"], r["queue_curve_s"]))
            print(f"  {fw:<6} {r['case'][:40]:<41} stop={r['queue_stop']:<13} {curve}")
    print(f"\n{'fw':<7}{'decode attention (bf16, 1 token)':<40}{'queued µs':>10}{'GB/s':>9}{'ceiling GB/s':>14}{'of ceiling':>12}"
          f"{'device µs':>11}{'device GB/s':>13}{'correct':>9}{'max err':>9}")
    for fw, rounds in results.items():
        ceiling = rounds[0].get("ceiling")
        top = ceiling.get("gbps") if ceiling else None
        for d in rounds[0]["decode"]:
            p = d["params"]
            if "error" in d:
                print(f"{fw:<7}kv={p['kv_len']:>5} heads {p['heads']}/{p['kv_heads']}: {d['error']}")
                continue
            label = f"kv={p['kv_len']:>5} heads {p['heads']}/{p['kv_heads']}×{p['head_dim']}"
            dev = d.get("device_median_s")
            dev_gbps = f"{d['bytes_moved'] / dev / 1e9:.0f}" if dev else "—"
            print(f"{fw:<7}{label:<40}{us(d['queued_median_s']):>10}{d['gbps']:>9.0f}{(top or 0):>14.0f}"
                  f"{(d['gbps'] / top if top else 0):>12.1%}{us(dev):>11}{dev_gbps:>13}{str(d['correct']):>9}{d['max_rel_error']:>9.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--frameworks", default="torch,jax,mlx")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=1.0, help="suite budget per timing kind and case (s)")
    ap.add_argument("--json", type=Path, default=None, help="write the raw results here (after every process)")
    ap.add_argument("--cpus", type=cpu_list, default=(), help="bind every process to these CPUs, as bench run --cpus")
    ap.add_argument("--small-only", action="store_true", help="skip decode attention and the copy ceiling")
    ap.add_argument("--from-json", type=Path, default=None, help="print the report of an earlier --json file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--first-round", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("SMALLOPS " + json.dumps(child(args.child, args.device, args.budget, args.first_round), default=float), flush=True)
        return 0
    if args.from_json:
        report({fw: r for fw, r in json.loads(args.from_json.read_text()).items() if r and r[0]["small"]})
        return 0
    results: dict[str, list[dict[str, Any]]] = {}
    for rnd in range(args.rounds):
        for fw in args.frameworks.split(","):
            got = spawn(fw, args, rnd == 0 and not args.small_only)
            if isinstance(got, str):
                print(f"{fw} round {rnd + 1}: failed: {got}", flush=True)
                continue
            if rnd == 0 and got["backend"] != args.device:
                print(f"{fw}: ran on {got['backend']}, not {args.device}", flush=True)
            results.setdefault(fw, []).append(got)
            print(f"{fw} round {rnd + 1} done", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=float))
    results = {fw: r for fw, r in results.items() if r and r[0]["small"]}
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
