"""Find (and with --write, drop) stored rows whose machine key the runner could not have made.

Every row's `machine` is `bench.machine.machine_key` of the host it ran on, its backend
and its device; a row whose key differs was edited after the run (the H100 baseline held
TensorFlow `skipped` rows with no backend but the GPU-led key, so they sat in the GPU's
machine group although a failed worker's row keys by the host). Such rows are dropped
rather than re-keyed: the file then holds only what the tools produce.

    python scripts/baseline_machine_keys.py results/baselines/*.parquet           # report
    python scripts/baseline_machine_keys.py results/baselines/*.parquet --write   # drop them
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import stored_machine_key  # noqa: E402
from bench.results import read_results  # noqa: E402


def mismatched(path: Path) -> list[int]:
    """Row indices of `path` whose machine is not the key of their own columns."""
    df = read_results(path)
    return [i for i, r in df.iterrows()
            if r["machine"] != stored_machine_key(r["chip"], r["os"], r["backend"] if isinstance(r["backend"], str) else None,
                                                  r["device_name"] if isinstance(r["device_name"], str) else None,
                                                  int(r["gpu_cores"]) if pd.notna(r["gpu_cores"]) else None)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--write", action="store_true", help="rewrite each file without the mismatched rows")
    args = ap.parse_args(argv)
    found = 0
    for path in args.paths:
        bad = mismatched(path)
        found += len(bad)
        df = read_results(path)
        for (fw, backend, status, machine), n in df.loc[bad].groupby(["framework", "backend", "status", "machine"], dropna=False).size().items():
            print(f"{path}: {n} {fw} rows, backend {backend}, status {status}, keyed {machine!r}")
        if bad and args.write:
            table = pq.read_table(path)
            keep = pa.array([i not in set(bad) for i in range(table.num_rows)])
            pq.write_table(table.filter(keep), path)  # the schema and its metadata are kept
            print(f"{path}: dropped {len(bad)} of {table.num_rows} rows")
    if not found:
        print("every row's machine is the key of its own host, backend and device")
    return 1 if found and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
