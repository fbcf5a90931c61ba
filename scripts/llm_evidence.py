"""The LLM evidence docs/llm.md asks for, in one device call: each step capped, all under OUT.

Usage (from the repository root):
  python scripts/llm_evidence.py OUT --deadline SECONDS [--processes N] [--tiny]

Steps, in this order (each gets the smaller of its cap and what is left of the deadline
less a reserve for the tables; a step with too little left is skipped and says so):

  dense  `bench run -w generate` at Qwen2.5-0.5B's shape (bf16, batch 1, prompt 512, 128
         greedy tokens, dense weights): torch, JAX and MLX, eager and compiled
  refs   the same case, --reference-only: mlx-lm beside MLX eager, transformers' dynamic
         cache beside torch eager, its static cache beside torch compiled, each a process
         of its own (a run of their own, so a slow reference cannot cost the suite's rows)
  quant  the same shape with int8 and int4 weights, each framework at its best mode
         (--mode torch=compiled,jax=compiled,mlx=eager), with --reference (mlx-lm q8/q4
         beside MLX eager): the quality rows (top-1 agreement and KL against the same
         weights unquantized, over the 128 greedy tokens)
  sweep  scripts/decode_targets.py --only sweep-jax,sweep-mlx,sweep-torch: decode tokens/s at
         batch 1, 4, 16, 32, each framework at its best mode, with the KV cache each needs

Every `bench run` is one process per framework (--processes, default 1), --energy off,
--budget 0.3. Results go to a scratch folder this script makes (the runs' shared case
cache lives beside their logs there, and is not copied back); the parquet files, logs and
the sweep's JSON are copied to OUT after each step, and the scratch folder is removed.
Last, it prints each step's wall time, each case's wall time (the sum of its rows'
case_wall_s: what a full-suite run of it costs), scripts/llm_table.py over the runs, and
the sweep's table.

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

from workloads.generate import qwen25_05b, tiny  # noqa: E402

TABLE_RESERVE_S = 15.0  # kept back from the deadline for the tables at the end
MIN_STEP_S = 30.0  # a step with less than this left is skipped: it could not finish one case
CAPS = {"dense": 220.0, "refs": 130.0, "quant": 170.0, "sweep": 150.0}
SWEEP_GROUPS = "sweep-jax,sweep-mlx,sweep-torch"  # cheapest compile first
BEST_MODES = "torch=compiled,jax=compiled,mlx=eager"  # each at its best on the H200 (docs/llm.md; decode_targets.BEST_MODE)


def params_arg(p: dict[str, Any]) -> str:
    keys = ("layers", "d_model", "heads", "kv_heads", "ffn", "vocab", "tied", "prompt", "new_tokens", "batch", "bits", "group")
    return ",".join(f"{k}={str(p[k]).lower() if isinstance(p[k], bool) else p[k]}" for k in keys)


def shape(bits: int, small: bool) -> dict[str, Any]:
    return tiny(bits=bits) if small else qwen25_05b(bits=bits)


def bench_run(run_id: str, cases: list[dict[str, Any]], frameworks: str, modes: str, reference: str, results: Path,
              args: argparse.Namespace, timeout: float) -> list[str]:
    """The `bench run` command line of one step; `reference` is "", "--reference" or
    "--reference-only". The case time-out is the step's cap: one slow case (or reference)
    may use the step, never more."""
    cmd = [sys.executable, "-m", "bench", "run", "-w", "generate", "-d", "bf16", "--suite", "quick" if args.tiny else "full",
           "--processes", str(args.processes), "--energy", "off", "--budget", "0.3", "-f", frameworks, "--mode", modes,
           "-o", str(results), "--run-id", run_id, "--case-timeout", f"{max(timeout, 1.0):.0f}", *([reference] if reference else [])]  # fmt: skip
    for p in cases:
        cmd += ["-p", params_arg(p)]
    return cmd


def steps_of(args: argparse.Namespace, results: Path) -> dict[str, Any]:
    """name -> (run id, cases, frameworks, modes, reference flag) of each `bench run` step."""
    dense, quant = [shape(16, args.tiny)], [shape(8, args.tiny), shape(4, args.tiny)]
    return {
        "dense": ("llm-dense", dense, "torch,jax,mlx", "eager,compiled", ""),
        # mlx first: mlx-lm (seconds), then transformers dynamic, then static (its compile)
        "refs": ("llm-refs", dense, "mlx,torch", "eager,compiled", "--reference-only"),
        "quant": ("llm-quant", quant, "torch,jax,mlx", BEST_MODES, "--reference"),
    }


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
    print(f"[{name}: {wall:.0f} s, exit {code}]", flush=True)
    return {"step": name, "wall_s": wall, "exit": code}


def copy_back(scratch: Path, out: Path) -> None:
    """Parquet files, logs (not the run's caches) and JSON from the scratch folder to OUT."""
    for path in scratch.rglob("*"):
        rel = path.relative_to(scratch)
        if not path.is_file() or any(part in ("case-cache", "compile-cache") for part in rel.parts):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def case_walls(results: Path) -> list[str]:
    """Each case's wall time: the sum of case_wall_s over its rows (frameworks, modes,
    references), what a full-suite run of that case costs."""
    import pandas as pd

    from bench.results import load_results

    files = sorted(results.glob("*.parquet"))
    if not files:
        return ["(no rows)"]
    df = load_results([str(f) for f in files])
    lines = []
    for params, case in df.groupby("params", sort=False):
        p = json.loads(params)
        label = f"prompt {p['prompt']} batch {p['batch']} {'dense' if p['bits'] == 16 else 'int%d' % p['bits']}"
        parts = ", ".join(f"{r['framework']} {r['mode']}{' ref' if r['timing'] == 'reference' else ''} {r['case_wall_s']:.0f}"
                          for _, r in case.iterrows() if pd.notna(r["case_wall_s"]))
        lines.append(f"{label}: {case['case_wall_s'].sum():.0f} s ({parts})")
    return lines


def sweep_table(path: Path) -> list[str]:
    """The sweep's rows: decode tokens/s (tg, and batch / timed step), KV cache, peak memory."""
    if not path.is_file():
        return ["(no sweep rows)"]
    lines = [f"{'what':<22} {'batch':>5} {'tg tok/s':>9} {'step ms':>8} {'step tok/s':>10} {'KV MiB':>7} {'peak GiB':>8}"]
    for r in json.loads(path.read_text()):
        if "error" in r:
            lines.append(f"{r.get('label', '?'):<22} {r.get('batch', ''):>5}  {r['error'][:150]}")
            continue
        step = r.get("step_s")
        lines.append(f"{r['label']:<22} {r['batch']:>5} {r['tg_tokens_per_s']:>9.0f} {step * 1e3 if step else float('nan'):>8.2f} "
                     f"{r['batch'] / step if step else float('nan'):>10.0f} {r['kv_cache_bytes'] / 2**20:>7.1f} "
                     f"{(r.get('peak_memory_bytes') or float('nan')) / 2**30:>8.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for everything the steps write (made if missing)")
    ap.add_argument("--deadline", type=float, required=True, metavar="SECONDS", help="total seconds this script may take")
    ap.add_argument("--processes", type=int, default=1, help="fresh worker processes per framework in each bench run (default 1)")
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
        for name, (run_id, cases, frameworks, modes, reference) in steps_of(args, results).items():
            if (cap := left(name)) is not None:
                steps.append(run_step(name, bench_run(run_id, cases, frameworks, modes, reference, results, args, cap), cap, log))
                copy_back(scratch, args.out)
        if (cap := left("sweep")) is not None:
            cmd = [sys.executable, str(ROOT / "scripts" / "decode_targets.py"), "--only", SWEEP_GROUPS, "--shape", "tiny" if args.tiny else "qwen",
                   "--out", str(scratch / "sweep"), "--group-timeout", f"{cap / 3:.0f}"]  # fmt: skip
            env = dict(os.environ, **({"TORCHDYNAMO_DISABLE": "1", "MLX_DISABLE_COMPILE": "1"} if args.tiny else {}))
            steps.append(run_step("sweep", cmd, cap, log, env))
            copy_back(scratch, args.out)
        (args.out / "steps.json").write_text(json.dumps(steps, indent=1, default=str))
        print("\nsteps: " + ", ".join(f"{s['step']} {s['wall_s']:.0f} s ({s['exit']})" for s in steps))
        print("\ncase walls (sum of each case's rows' case_wall_s):")
        for line in case_walls(args.out / "results"):
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
