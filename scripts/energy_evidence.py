"""Issue 27's GPU evidence: does the suite's energy per call match NVML read directly?

In one device call (< 240 s on an H200):

1. suite side — `bench.runner.Runner` runs matmul 8192³ bf16, sdpa 4×32×4096×128 bf16 and the
   Qwen2.5-0.5B-shaped decode step (generate, compiled) for torch and JAX on CUDA with energy
   on: the worker's energy window (bench.energy.window, Zeus's NVML reader) writes
   energy_j_per_call, power, idle, the board limit and tokens per joule into each row.
2. direct side — a fresh process per framework builds the same calls through the same
   adapter (the calls, not the measurement, are shared), warms them up, then reads
   `pynvml.nvmlDeviceGetTotalEnergyConsumption` itself around `--direct-s` seconds of
   batches of the suite row's queue depth, each closed by the framework's barrier: no Zeus,
   no bench.energy code. It also reads the board limit from NVML.

Prints per case: suite J/call, direct J/call, their ratio (target within 10%), mean power
against the board limit, idle power, and tokens per joule for decode. --smoke runs tiny
shapes on the CPU (energy null with its reason on a machine without counters).

    python3 scripts/energy_evidence.py --out $OUT            # the device call
    .venv/bin/python scripts/energy_evidence.py --smoke --out /tmp/ev   # here, on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fmt import fmt_num as fmt  # noqa: E402
from workloads.generate import qwen25_05b, tiny  # noqa: E402

FULL = [("matmul", {"m": 8192, "n": 8192, "k": 8192}, "bf16", "eager"),
        ("sdpa", {"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": False}, "bf16", "eager"),
        ("generate", qwen25_05b(512, 128, 1, 16), "bf16", "compiled")]
SMOKE = [("matmul", {"m": 64, "n": 64, "k": 64}, "bf16", "eager"),
         ("sdpa", {"batch": 1, "heads": 2, "seq": 64, "head_dim": 32, "causal": False}, "bf16", "eager"),
         ("generate", tiny(), "bf16", "compiled")]


def suite_side(frameworks: list[str], cases: list[tuple], device: str, out: Path, budget: float) -> list[dict]:
    """Every case through the runner (worker processes, energy on), rows as written."""
    from bench import measure
    from bench.plan import Case
    from bench.results import ResultsWriter
    from bench.runner import Runner, RunConfig

    config = RunConfig(suite="full", device=device, timings=("queued",), case_timeout_s=180.0,
                       protocol=measure.Protocol(budget_s=budget, energy=True))
    plan = [Case(fw, w, p, d, m) for fw in frameworks for (w, p, d, m) in cases]
    writer = ResultsWriter(out / f"suite-{'-'.join(frameworks)}.parquet")
    return Runner(config, writer, "energy-evidence").run(plan)


def _nvml() -> Any:
    import pynvml

    pynvml.nvmlInit()
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)


def _prepare(adapter: Any, workload: str, params: dict, dtype: str, mode: str) -> Any:
    """The case built as the worker builds it (same seed, same storage rounding, same adapter)."""
    import numpy as np

    from bench.plan import case_seed
    from bench.precision import stored_inputs
    from workloads import WORKLOADS

    rng = np.random.default_rng(case_seed(workload, params, dtype))
    inputs = stored_inputs(WORKLOADS[workload].make_inputs(params, rng), dtype)
    adapter.set_math_mode(dtype)
    adapter.mode, adapter.suite = mode, "full"
    return adapter.prepare(workload, params, dtype, inputs)


def direct_case(adapter: Any, case: tuple, depth: int, seconds: float, idle_s: float) -> dict:
    """Raw NVML around `seconds` of depth-k batches of the adapter's call (each closed by its barrier)."""
    workload, params, dtype, mode = case
    prepared = _prepare(adapter, workload, params, dtype, mode)
    for _ in range(3):  # first call (compile) and warm-up, outside the window
        adapter.barrier(prepared.call())
    try:
        nvml, handle = _nvml()
    except Exception as exc:
        return {"direct_note": f"NVML unavailable: {type(exc).__name__}: {exc}"}
    e0, t0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
    time.sleep(idle_s)
    e1, t1 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
    calls = 0
    while time.perf_counter() - t1 < seconds:
        out = None
        for _ in range(depth):
            out = None
            out = prepared.call()
            adapter.enqueue(out)
        adapter.barrier(out)
        calls += depth
    e2, t2 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()
    return {"direct_j_per_call": (e2 - e1) / 1e3 / calls, "direct_power_w": (e2 - e1) / 1e3 / (t2 - t1),
            "direct_idle_w": (e1 - e0) / 1e3 / (t1 - t0), "direct_calls": calls, "direct_per_call_s": (t2 - t1) / calls,
            "limit_w": nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1e3,
            "enforced_limit_w": nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1e3}


def child_direct(framework: str, device: str, jobs: list[dict], seconds: float, idle_s: float) -> list[dict]:
    import importlib

    from bench.catalog import FRAMEWORKS

    module, _, cls = FRAMEWORKS[framework].adapter.partition(":")
    adapter = getattr(importlib.import_module(module), cls)(device=device)
    results = []
    for job in jobs:
        case = (job["workload"], job["params"], job["dtype"], job["mode"])
        try:
            results.append({**job, **direct_case(adapter, case, job["depth"], seconds, idle_s)})
        except Exception as exc:  # one case failing costs that case
            results.append({**job, "direct_note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"})
        adapter.release()
    return results


def direct_side(frameworks: list[str], rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """One fresh process per framework (after the suite's workers have exited)."""
    found = []
    for fw in frameworks:
        jobs = [{"framework": fw, "workload": r["workload"], "params": json.loads(r["params"]), "dtype": r["dtype"],
                 "mode": r["mode"], "depth": int(r.get("queue_depth") or 1)} for r in rows if r["framework"] == fw and r["status"] == "ok"]
        if not jobs:
            continue
        cmd = [sys.executable, __file__, "--child", fw, "--device", args.device, "--direct-s", str(args.direct_s),
               "--idle-s", str(args.idle_s), "--jobs", json.dumps(jobs)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.child_timeout)
        (args.out / f"direct-{fw}.log").write_text(done.stderr)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("[")]
        found += json.loads(lines[-1]) if lines else [{**j, "direct_note": f"child failed (exit {done.returncode})"} for j in jobs]
    return found


def overhead(backend: str, pairs: int = 200) -> str:
    """What measuring costs beyond the window itself: one begin/end pair of counter reads
    (bench.energy.Meter, Zeus underneath) and one conditions snapshot, timed here."""
    from bench import conditions
    from bench.energy import open_meter

    meter = open_meter(backend)
    t0 = time.perf_counter()
    for _ in range(20):
        conditions.snapshot(backend)
    snap_us = (time.perf_counter() - t0) / 20 * 1e6
    if isinstance(meter, str):
        return f"overhead: no meter ({meter}); conditions snapshot {snap_us:.0f} us"
    t0 = time.perf_counter()
    for i in range(pairs):
        meter.begin("o")
        meter.end("o")
    pair_us = (time.perf_counter() - t0) / pairs * 1e6
    return f"overhead: one counter begin/end pair {pair_us:.1f} us ({meter.name}); conditions snapshot {snap_us:.0f} us"


def earlier_rows(path: Path | None, framework: str) -> list[dict]:
    """Rows of `framework` from an earlier call's suite parquet (a device call is at most 10 minutes,
    so the suite side of one framework and the direct side may land in different calls)."""
    if path is None or not path.exists():
        return []
    import pandas as pd

    frame = pd.read_parquet(path)
    return frame[frame["framework"] == framework].to_dict("records")


def table(rows: list[dict], direct: list[dict]) -> list[dict]:
    by_key = {(d["framework"], d["workload"]): d for d in direct}
    out = []
    for r in rows:
        d = by_key.get((r["framework"], r["workload"]), {})
        suite_j, direct_j = r.get("energy_j_per_call"), d.get("direct_j_per_call")
        batch = json.loads(r["params"]).get("batch", 1) if r["workload"] == "generate" else None
        out.append({
            "framework": r["framework"], "workload": r["workload"], "mode": r["mode"], "status": r["status"],
            "median_s": r.get("median_s"), "suite_j_per_call": suite_j, "direct_j_per_call": direct_j,
            "ratio": suite_j / direct_j if suite_j and direct_j else None,
            "suite_power_w": r.get("energy_power_w"), "direct_power_w": d.get("direct_power_w"),
            "suite_idle_w": r.get("energy_idle_w"), "direct_idle_w": d.get("direct_idle_w"),
            "limit_w": d.get("limit_w") or r.get("energy_limit_w"), "enforced_limit_w": d.get("enforced_limit_w"),
            "suite_tokens_per_joule": r.get("tokens_per_joule"),
            "direct_tokens_per_joule": batch / direct_j if batch and direct_j else None,
            "tflops_per_watt": r.get("tflops_per_watt"), "energy_check": r.get("energy_check"),
            "energy_note": r.get("energy_note"), "direct_note": d.get("direct_note"), "conditions": r.get("conditions"),
            "gpu_clock_before_after": (r.get("gpu_sm_clock_mhz_before"), r.get("gpu_sm_clock_mhz_after")),
            "throttle_after": r.get("gpu_throttle_after"), "window_per_call_s": r.get("energy_window_per_call_s"),
            "direct_per_call_s": d.get("direct_per_call_s"), "reason": r.get("reason"),
        })
    return out


def report(lines: list[dict]) -> None:
    print(flush=True)
    print(f"{'case':<22} {'median':>9} {'suite J':>9} {'direct J':>9} {'ratio':>6} {'W suite':>8} {'W direct':>8} "
          f"{'W idle':>7} {'limit':>6} {'tok/J s':>8} {'tok/J d':>8}  check / notes")
    for x in lines:
        name = f"{x['framework']} {x['workload']}" + (" c" if x["mode"] == "compiled" else "")
        notes = "; ".join(str(n) for n in (x["energy_check"], x["energy_note"], x["direct_note"], x["reason"] or None) if n)
        print(f"{name:<22} {fmt(x['median_s'], '.3g'):>9} {fmt(x['suite_j_per_call'], '.4g'):>9} {fmt(x['direct_j_per_call'], '.4g'):>9} "
              f"{fmt(x['ratio'], '.3f'):>6} {fmt(x['suite_power_w'], '.4g'):>8} {fmt(x['direct_power_w'], '.4g'):>8} "
              f"{fmt(x['suite_idle_w'], '.3g'):>7} {fmt(x['limit_w'], '.4g'):>6} {fmt(x['suite_tokens_per_joule'], '.4g'):>8} "
              f"{fmt(x['direct_tokens_per_joule'], '.4g'):>8}  {notes[:160]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/energy-evidence")))
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (checks the script, not the numbers)")
    ap.add_argument("-f", "--frameworks", default="torch,jax")
    ap.add_argument("--device", default=None)
    ap.add_argument("--budget", type=float, default=1.0, help="suite sampling budget per case (s)")
    ap.add_argument("--direct-s", type=float, default=2.0, help="direct NVML window per case (s)")
    ap.add_argument("--idle-s", type=float, default=0.5)
    ap.add_argument("--child-timeout", type=float, default=150.0)
    ap.add_argument("--suite-rows", type=Path, default=None,
                    help="a suite parquet an earlier call of this script wrote: its frameworks skip the suite side")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--jobs", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    if args.child:
        print(json.dumps(child_direct(args.child, args.device, json.loads(args.jobs), args.direct_s, args.idle_s)), flush=True)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    started = time.perf_counter()
    print(overhead(args.device), flush=True)
    lines: list[dict] = []
    for fw in frameworks:  # suite then direct, per framework: a cut-short call still leaves pairs
        t0 = time.perf_counter()
        rows = earlier_rows(args.suite_rows, fw) or suite_side([fw], SMOKE if args.smoke else FULL, args.device,
                                                               args.out, args.budget)
        t1 = time.perf_counter()
        lines += table(rows, direct_side([fw], rows, args))
        (args.out / "energy_evidence.json").write_text(json.dumps(lines, indent=1, default=str))
        print(f"{fw}: suite side {t1 - t0:.0f} s, direct side {time.perf_counter() - t1:.0f} s "
              f"(total {time.perf_counter() - started:.0f} s)", flush=True)
        report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
