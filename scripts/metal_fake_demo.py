"""What a Mac's `make doctor` and `make bench` do for JAX with the default plugin, jax-mps, without a Mac.

The JAX worker gets the jax-mps 0.11.1 wheel's own files (tests/fake_plugins.py: its
`jax_plugins/mps` package and dist-info verbatim, only the native library stood in by XLA's
CPU client), so JAX's own plugin discovery runs jax-mps's own `initialize()`: registration as
"mps", its fused-op registration and its patch of `jax.nn.dot_product_attention`. Then it runs

    bench doctor -f jax --device metal
    bench run -f jax --device metal -w matmul,sdpa -d fp32,bf16 --budget 0.1

as `make doctor` / `make bench` do on a Mac (DEVICE=metal, JAX_PLUGIN=jax-mps). The "Metal"
timings are XLA:CPU's; what the demo shows is selection, labels and self-checks, not speed.

    .venv/bin/python scripts/metal_fake_demo.py [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests import fake_plugins  # noqa: E402


def run(args: list[str], env: dict[str, str]) -> int:
    print(f"$ bench {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "bench", *args], env=env, cwd=REPO_ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    print(done.stdout.rstrip(), f"\n(exit {done.returncode})\n", flush=True)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder for the run's results (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="metal-fake-") as scratch:
        site = fake_plugins.install(Path(scratch) / "site", fake_plugins.JAX_MPS)
        env = fake_plugins.env_with(site)
        out = args.out or Path(scratch) / "results"
        doctor = run(["doctor", "-f", "jax", "--device", "metal"], env)
        bench = run(["run", "-f", "jax", "--device", "metal", "-w", "matmul,sdpa", "-d", "fp32,bf16", "--budget", "0.1",
                     "--out", str(out), "--run-id", "metal-fake"], env)
        if bench == 0:
            import pandas as pd

            rows = pd.read_parquet(out / "metal-fake.parquet")
            rows = rows[rows["process"].fillna(0) == 0]  # one line per case (the first fresh process)
            cols = ["workload", "dtype", "backend", "status", "device_name", "implementation", "placement_check"]
            with pd.option_context("display.width", 250, "display.max_colwidth", 90):
                print(rows[cols].to_string(index=False))
                print("versions:", rows["versions"].iloc[0])
        return doctor or bench


if __name__ == "__main__":
    sys.exit(main())
