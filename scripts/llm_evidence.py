"""The LLM evidence docs/llm.md asks for, from one device call: each step capped, all under OUT.

Usage (from the repository root):
  python scripts/llm_evidence.py OUT --deadline SECONDS [--cases 1,2] [--skip sweep] [--batches 1,4,16,32] [--tiny]

Steps, in this order (each gets the smaller of its cap and what is left of the deadline
less a reserve for the tables; a step with too little left is skipped and says so):

  suite  `bench run -w generate -d bf16 --suite full -f torch,jax,mlx --mode eager,compiled
         --reference --processes 1 --energy off`: the full generate suite (pp512/tg128 at
         batch 1 dense, int8 and int4, and batch 4 dense), or the suite's cases numbered in
         --cases (1-based; parts run apart each start their own processes, so the suite's
         wall is one run's: on the lent H200 it took 741.5 s, with --caps suite=1150)
  sweep  scripts/decode_targets.py --only sweep-jax,sweep-mlx,sweep-torch --batches ...:
         decode tokens/s at each batch, each framework at its best mode, with the KV cache
         each needs

Results go to a scratch folder this script makes (the run's case cache lives beside its
logs there, and is not copied back); parquet files, logs and the sweep's JSON are copied to
OUT after each step, and the scratch folder is removed. Last, it prints each step's wall
time, every row's wall and where it went (metrics.phase_s, check_phase_s: bench.phases),
scripts/llm_table.py over the rows, and the sweep's table.

--tiny: the same steps on the 2-layer tiny shape with the quick suite (a CPU dry run of the
plumbing: compiled torch and MLX are skipped there, and the sweep runs their compilers off).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))  # llm_table, for the table at the end

from bench.argtypes import positive_ints  # noqa: E402
from bench.runner import new_run_id  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

TABLE_RESERVE_S = 15.0  # kept back from the deadline for the tables at the end
MIN_STEP_S = 30.0  # a step with less than this left is skipped: it could not finish one case
CAPS = {"suite": 560.0, "sweep": 300.0}
SWEEP_GROUPS = "sweep-jax,sweep-mlx,sweep-torch"  # cheapest compile first
RUN_PREFIX = "llm-suite-"  # the suite's run id: this and bench.runner.new_run_id (one id per run: a baseline pools a run's processes)


def params_arg(p: dict[str, Any]) -> str:
    keys = ("layers", "d_model", "heads", "kv_heads", "ffn", "vocab", "tied", "prompt", "new_tokens", "batch", "bits", "group")
    return ",".join(f"{k}={str(p[k]).lower() if isinstance(p[k], bool) else p[k]}" for k in keys)


def suite_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The generate suite's cases (full, or quick with --tiny), those numbered in --cases."""
    cases = WORKLOADS["generate"].cases("quick" if args.tiny else "full")
    if not args.cases:
        return cases
    return [cases[i - 1] for i in args.cases]


def bench_run(cases: list[dict[str, Any]], results: Path, args: argparse.Namespace, timeout: float) -> list[str]:
    """The suite step's `bench run` command line. The case time-out is the step's cap: one
    slow case may use the step, never more."""
    cmd = [sys.executable, "-m", "bench", "run", "-w", "generate", "-d", "bf16", "--suite", "quick" if args.tiny else "full",
           "--processes", str(args.processes), "--energy", "off", "-f", "torch,jax,mlx", "--mode", "eager,compiled", "--reference",
           "-o", str(results), "--run-id", RUN_PREFIX + new_run_id(), "--case-timeout", f"{max(timeout, 1.0):.0f}"]  # fmt: skip
    for p in cases:
        cmd += ["-p", params_arg(p)]
    return cmd


def run_step(name: str, cmd: list[str], timeout: float, log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One step as a child process group: SIGINT at its cap (bench keeps the rows it wrote),
    SIGKILL 20 s later if it has not stopped."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code: Any = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = f"stopped at its {timeout:.0f} s cap"
    wall = time.perf_counter() - started
    print(f"[{name}: {wall:.1f} s, exit {code}]", flush=True)
    return {"step": name, "wall_s": wall, "exit": code}


def copy_back(scratch: Path, out: Path) -> None:
    """Parquet files (the run's journal too), logs (not the run's caches) and JSON from the scratch folder to OUT."""
    for path in scratch.rglob("*"):
        rel = path.relative_to(scratch)
        if not path.is_file() or any(part in ("case-cache", "compile-cache") for part in rel.parts):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def row_walls(results: Path) -> list[str]:
    """Every row's wall (case_wall_s) and where it went: the worker's steps (phase_s) and the
    check's (check_phase_s), steps under 0.5 s left out; the sum, what the suite's rows cost."""
    import pandas as pd

    from bench.report.data import parse_metrics
    from bench.results import load_results

    files = sorted(str(f) for f in results.glob("*.parquet"))
    if not files:
        return ["(no rows)"]
    df = load_results(files)
    lines, total = [], 0.0
    for _, r in df.iterrows():
        p, m = json.loads(r["params"]), parse_metrics(r["metrics"])
        wall = float(r["case_wall_s"]) if pd.notna(r["case_wall_s"]) else 0.0
        total += wall
        case = f"p{p['prompt']} b{p['batch']} {'dense' if p['bits'] == 16 else 'int%d' % p['bits']}"
        who = f"{r['framework']} {r['mode']}{' ref' if r['timing'] == 'reference' else ''}"
        steps = " · ".join(f"{k} {v:.1f}" for k, v in {**(m.get("phase_s") or {}), **(m.get("check_phase_s") or {})}.items() if v >= 0.5)
        lines.append(f"{case:<15} {who:<18} {r['status']:<11} {wall:6.1f} s  {steps}")
    lines.append(f"sum of the rows' walls: {total:.0f} s over {len(df)} rows")
    return lines


def sweep_table(path: Path) -> list[str]:
    """The sweep's rows: decode tokens/s (tg, and batch / timed step), KV cache, peak memory."""
    if not path.is_file():
        return ["(no sweep rows)"]
    lines = [f"{'what':<22} {'batch':>5} {'tg tok/s':>9} {'step ms':>8} {'step tok/s':>10} {'KV MiB':>7} {'peak GiB':>8} {'1st s':>6}"]
    for r in json.loads(path.read_text()):
        if "error" in r:
            lines.append(f"{r.get('label', '?'):<22} {r.get('batch', ''):>5}  {r['error'][:150]}")
            continue
        step = r.get("step_s")
        lines.append(f"{r['label']:<22} {r['batch']:>5} {r['tg_tokens_per_s']:>9.0f} {step * 1e3 if step else float('nan'):>8.2f} "
                     f"{r['batch'] / step if step else float('nan'):>10.0f} {r['kv_cache_bytes'] / 2**20:>7.1f} "
                     f"{(r.get('peak_memory_bytes') or float('nan')) / 2**30:>8.2f} {r.get('first_call_s', float('nan')):>6.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for everything the steps write (made if missing)")
    ap.add_argument("--deadline", type=float, required=True, metavar="SECONDS", help="total seconds this script may take")
    ap.add_argument("--processes", type=int, default=1, help="fresh worker processes per framework in the suite step (default 1)")
    ap.add_argument("--cases", type=positive_ints, default=None, metavar="I,J",
                    help="the suite's cases to run, numbered from 1 in workloads/generate.py's order (default: all)")
    ap.add_argument("--batches", type=positive_ints, default=(1, 4, 16, 32), metavar="B,...",
                    help="the sweep's batch sizes (default 1,4,16,32)")
    ap.add_argument("--tiny", action="store_true", help="the 2-layer tiny shape and the quick suite: a CPU dry run")
    ap.add_argument("--caps", default="", metavar="STEP=S,...",
                    help="seconds per step instead of the defaults: " + ",".join(f"{k}={v:g}" for k, v in CAPS.items()))
    ap.add_argument("--skip", default="", metavar="STEPS", help=f"steps not to run, comma-separated ({', '.join(CAPS)})")
    args = ap.parse_args(argv)
    caps = dict(CAPS)
    for item in filter(None, args.caps.split(",")):
        name, _, seconds = item.partition("=")
        if name not in CAPS:
            ap.error(f"--caps: unknown step {name!r} (choose from: {', '.join(CAPS)})")
        caps[name] = float(seconds)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(CAPS):
        ap.error(f"--skip: unknown step(s) {', '.join(sorted(skip - set(CAPS)))} (choose from: {', '.join(CAPS)})")
    count = len(WORKLOADS["generate"].cases("quick" if args.tiny else "full"))
    if args.cases and max(args.cases) > count:
        ap.error(f"--cases: the {'quick' if args.tiny else 'full'} suite has {count} generate case(s), numbered 1-{count}")
    deadline = time.perf_counter() + args.deadline
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="llm-evidence-"))  # this script's own: removed at the end
    results, log = scratch / "results", args.out / "llm_evidence.log"
    steps: list[dict[str, Any]] = []

    def left(name: str) -> float | None:
        if name in skip:
            return None
        budget = min(caps[name], deadline - time.perf_counter() - TABLE_RESERVE_S)
        if budget < MIN_STEP_S and not args.tiny:
            print(f"[{name}: skipped, {budget:.0f} s left of the deadline]", flush=True)
            steps.append({"step": name, "wall_s": 0.0, "exit": "skipped: no time left"})
            return None
        return budget

    try:
        if (cap := left("suite")) is not None:
            steps.append(run_step("suite", bench_run(suite_cases(args), results, args, cap), cap, log))
            copy_back(scratch, args.out)
        if (cap := left("sweep")) is not None:
            groups = SWEEP_GROUPS.count(",") + 1
            cmd = [sys.executable, str(ROOT / "scripts" / "decode_targets.py"), "--only", SWEEP_GROUPS, "--shape", "tiny" if args.tiny else "qwen",
                   "--batches", ",".join(map(str, args.batches)), "--out", str(scratch / "sweep"), "--group-timeout", f"{cap / groups:.0f}"]  # fmt: skip
            env = dict(os.environ, **({"TORCHDYNAMO_DISABLE": "1", "MLX_DISABLE_COMPILE": "1"} if args.tiny else {}))
            steps.append(run_step("sweep", cmd, cap, log, env))
            copy_back(scratch, args.out)
        (args.out / "steps.json").write_text(json.dumps(steps, indent=1, default=str))
        print("\nsteps: " + ", ".join(f"{s['step']} {s['wall_s']:.1f} s ({s['exit']})" for s in steps))
        print("\nrows (case_wall_s and where it went: metrics.phase_s and check_phase_s, steps of 0.5 s or more):")
        for line in row_walls(args.out / "results"):
            print("  " + line)
        import llm_table

        parquet = sorted(str(f) for f in (args.out / "results").glob("*.parquet"))
        print("\n".join(llm_table.rows(parquet)) if parquet else "\n(no bench rows)")
        print("\nbatch sweep (scripts/decode_targets.py, each framework at its best mode):")
        for line in sweep_table(args.out / "sweep" / "decode_targets.json"):
            print("  " + line)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
