"""Where does a small op's between-process spread come from? (issue 16, on the lent GPU)

The deep-queue figure of a dispatch-bound op (matmul 16×4096·4096², sdpa 64×8×64×128,
y = 2x over 8M elements, all bf16) moved by 3-117% between fresh processes on the H200,
for the suite and for a direct measurement alike. This script separates the candidate
causes, each fresh process measuring the same three ops directly (scripts/fidelity.py's
`direct_op`: the framework's own API, no adapter code):

* drift inside a process: the deep-queue per-call time in `--segments` consecutive
  segments of ~0.1 s (a trend = warm-up or clocks; flat = a per-process state);
* the host core: each process runs either where the scheduler puts it ("free") or bound
  with `taskset` to two cores of the GPU's own NUMA node ("pinned"); the core each
  segment ran on and the GPU's SM clock (NVML) are recorded;
* the suite against direct in the same process, interleaved (suite, direct, suite, direct)
  so drift hits both: the suite side is `bench.worker.run_case`, its plateau figure.

    python3 scripts/process_states.py -f torch,jax,mlx --processes 5 --json $OUT/states.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.catalog import FRAMEWORKS  # noqa: E402
from fidelity import run_child  # noqa: E402

SMALL = [
    ("matmul", {"m": 16, "n": 4096, "k": 4096}, "bf16"),
    ("sdpa", {"batch": 64, "heads": 8, "seq": 64, "head_dim": 128, "causal": False}, "bf16"),
    ("stream", {"n": 1 << 23}, "bf16"),
]
IN_FLIGHT = 2**30  # outputs-in-flight bound, as the suite's


@functools.cache
def _nvml_gpu() -> Any:
    """NVML's handle of GPU 0, initialised once per process; None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:
        return None


def sm_clock() -> int | None:
    gpu = _nvml_gpu()
    if gpu is None:
        return None
    import pynvml

    return int(pynvml.nvmlDeviceGetClockInfo(gpu, pynvml.NVML_CLOCK_SM))


def this_cpu() -> int:
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


def child(framework: str, device: str, segments: int, interleave: bool, budget: float) -> dict[str, Any]:
    from fidelity import deep_queue, direct_op

    out: dict[str, Any] = {"affinity": sorted(os.sched_getaffinity(0)), "cases": []}
    adapter = None
    if interleave:
        module, _, cls = FRAMEWORKS[framework].adapter.partition(":")
        adapter = getattr(__import__(module, fromlist=[cls]), cls)(device=device)
    for workload, p, dtype in SMALL:
        call, start, barrier, out_bytes = direct_op(framework, workload, p, dtype, device)
        depth = max(2, min(1024, IN_FLIGHT // out_bytes))

        batch = deep_queue(call, start, barrier, depth)

        def deep() -> float:
            t0 = time.perf_counter()
            batch()
            return (time.perf_counter() - t0) / depth

        t_end = time.perf_counter() + 0.3  # warm-up: compile, autotune, clocks
        while time.perf_counter() < t_end:
            deep()
        segs = []
        for _ in range(segments):
            reps, t_seg = [], time.perf_counter() + 0.1
            while time.perf_counter() < t_seg or len(reps) < 3:
                reps.append(deep())
            segs.append({"per_call": statistics.median(reps), "cpu": this_cpu(), "sm_mhz": sm_clock()})
        case: dict[str, Any] = {"case": f"{workload} " + " ".join(f"{k}={v}" for k, v in p.items()), "depth": depth, "segments": segs}
        if adapter is not None:
            from bench.plan import CaseMessage
            from bench.worker import run_case

            pairs = []
            for _ in range(2):
                row = run_case(adapter, CaseMessage.from_json(
                    {"workload": workload, "params": p, "dtype": dtype, "timings": ["queued"], "protocol": {"budget_s": budget}}))
                reps = [deep() for _ in range(15)]
                pairs.append({"suite": row.get("queued_median_s"), "k": row.get("queue_depth"), "direct": statistics.median(reps)})
            case["interleaved"] = pairs
            adapter.release()
        out["cases"].append(case)
        del call, start, barrier
    return out


def gpu_cores() -> list[int]:
    """Two cores of the GPU's NUMA node (from sysfs), or the first two cores."""
    try:
        bus = subprocess.run(["nvidia-smi", "--query-gpu=pci.bus_id", "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.strip().lower()
        bus = bus[4:] if len(bus.split(":")[0]) == 8 else bus  # 00000000:19:00.0 -> 0000:19:00.0
        text = Path(f"/sys/bus/pci/devices/{bus}/local_cpulist").read_text().strip()
        cores = []
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cores += list(range(int(lo), int(hi or lo) + 1))
        cores = [c for c in cores if c in os.sched_getaffinity(0)]
        return cores[2:4] if len(cores) >= 4 else cores[:2]
    except Exception:
        return sorted(os.sched_getaffinity(0))[2:4]


def spawn(framework: str, args: argparse.Namespace, pin: list[int] | None, interleave: bool) -> dict[str, Any] | str:
    cmd = [sys.executable, __file__, "--child", framework, "--device", args.device, "--segments", str(args.segments),
           "--budget", str(args.budget)] + (["--interleave"] if interleave else [])
    if pin:
        cmd = ["taskset", "-c", ",".join(map(str, pin))] + cmd
    env = {**os.environ, **FRAMEWORKS[framework].worker_env("bf16")}
    return run_child(cmd, env, "STATES")


def report(results: dict[str, Any]) -> None:
    print(f"pinned cores: {results['pin']}")
    print(f"\n{'fw':<6}{'case':<44}{'cond':<8}{'per-process median µs':<44}{'spread':>8}{'in-proc':>9}{'cpus':>14}{'SM MHz':>12}")
    for fw, by_cond in results["runs"].items():
        for ci in range(len(SMALL)):
            for cond, procs in by_cond.items():
                procs = [p for p in procs if isinstance(p, dict)]
                if not procs:
                    continue
                meds = [statistics.median(s["per_call"] for s in p["cases"][ci]["segments"]) for p in procs]
                inproc = statistics.median(
                    (max(s["per_call"] for s in p["cases"][ci]["segments"]) / min(s["per_call"] for s in p["cases"][ci]["segments"]) - 1)
                    for p in procs)
                cpus = sorted({s["cpu"] for p in procs for s in p["cases"][ci]["segments"]})
                mhz = sorted({s["sm_mhz"] for p in procs for s in p["cases"][ci]["segments"] if s["sm_mhz"]})
                print(f"{fw:<6}{procs[0]['cases'][ci]['case'][:43]:<44}{cond:<8}{' '.join(f'{m * 1e6:.1f}' for m in meds):<44}"
                      f"{max(meds) / min(meds) - 1:>8.1%}{inproc:>9.1%}{','.join(map(str, cpus))[:13]:>14}"
                      f"{(f'{mhz[0]}-{mhz[-1]}' if mhz else '—'):>12}")
    print("\nsuite vs direct in the same process, interleaved (suite/direct, µs; k = suite's plateau depth)")
    for fw, by_cond in results["runs"].items():
        for ci in range(len(SMALL)):
            pairs = [pr for p in by_cond.get("free", []) if isinstance(p, dict) for pr in p["cases"][ci].get("interleaved", [])]
            if pairs:
                txt = "  ".join(f"{pr['suite'] * 1e6:.1f}/{pr['direct'] * 1e6:.1f}(k{pr['k']})" for pr in pairs if pr["suite"])
                ratios = [pr["suite"] / pr["direct"] for pr in pairs if pr["suite"]]
                within = sum(abs(r - 1) <= 0.10 for r in ratios)
                print(f"{fw:<6}{SMALL[ci][0]:<8} within 10%: {within}/{len(ratios)}  {txt}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--frameworks", default="torch,jax,mlx")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--processes", type=int, default=5, help="fresh processes per framework and condition")
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--budget", type=float, default=0.5, help="the suite side's budget (interleaved runs)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--from-json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--interleave", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("STATES " + json.dumps(child(args.child, args.device, args.segments, args.interleave, args.budget)), flush=True)
        return 0
    if args.from_json:
        report(json.loads(args.from_json.read_text()))
        return 0
    results: dict[str, Any] = {"pin": gpu_cores(), "runs": {}}
    for i in range(args.processes):
        for fw in args.frameworks.split(","):
            for cond in ("free", "pinned"):
                got = spawn(fw, args, results["pin"] if cond == "pinned" else None, interleave=cond == "free")
                if isinstance(got, str):
                    print(f"{fw} {cond} {i + 1}: failed: {got}", flush=True)
                results["runs"].setdefault(fw, {}).setdefault(cond, []).append(got)
                print(f"{fw} {cond} process {i + 1} done", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
