"""One build of a costly case's inputs and float64 reference per run, shared by its workers.

A `generate` case at Qwen2.5-0.5B's shape draws ~0.5 billion seeded weights (and, when
quantized, their codes and the dense copy the quality figures need), rounds them to the
dtype and runs a float64 forward for the reference and a float64 greedy decoding for its
reference extras: ~25 s of CPU per worker process on the lent H200's host. Every framework, and every fresh process of one (`--processes N`),
draws exactly the same arrays (bench.plan.case_seed), so the first worker that reaches
the case stores what it built here and the others load it (~1 s from the page cache).

The folder is the run's own, `<out>/<run-id>.logs/case-cache/`, as the JAX compilation
cache beside it: the runner creates it (refusing one that already exists: it would not
be this run's), points each case of a workload marked `shared_inputs` that more than one
worker process will run at its entry, removes an entry after the last case that needs it
and the folder when the run ends. A worker writes an entry into a temporary folder and
renames it into place, so a reader never sees half of one; an entry that cannot be
written (disk full) costs the sharing, never the row.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from workloads import params_key

FOLDER = "case-cache"
REFERENCE = "reference"  # the entry's reference array; the inputs are `input.<name>.npy`, the
EXTRA = "extra."  # workload's reference_extras `extra.<name>.npy`


def case_key(workload: str, params: Mapping[str, Any], dtype: str) -> str:
    """The identity of a case's inputs: what bench.plan.case_seed draws them from."""
    return f"{workload}|{params_key(params)}|{dtype}"


def entry_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def shared_keys(cases: Iterable[Any], shared: Mapping[str, bool]) -> dict[str, int]:
    """{case key: index of its last case} for the cases of a workload marked shared that
    more than one worker process runs (a framework's process p is one worker); a key
    only one process needs is built where it runs, as before."""
    workers: dict[str, set[tuple[str, int]]] = {}
    last: dict[str, int] = {}
    for i, case in enumerate(cases):
        if not shared.get(case.workload):
            continue
        key = case_key(case.workload, case.params, case.dtype)
        workers.setdefault(key, set()).add((case.framework, case.process))
        last[key] = i
    return {key: i for key, i in last.items() if len(workers[key]) > 1}


def _arrays(entry: Path, prefix: str) -> dict[str, np.ndarray]:
    return {path.name[len(prefix) : -len(".npy")]: np.load(path, allow_pickle=False) for path in sorted(entry.glob(f"{prefix}*.npy"))}


def load(entry: Path) -> tuple[dict[str, np.ndarray], Any, dict[str, np.ndarray]] | None:
    """The inputs, reference and reference extras a worker stored, or None where none is
    stored (yet)."""
    if not (entry / "complete").is_file():
        return None
    return _arrays(entry, "input."), np.load(entry / f"{REFERENCE}.npy", allow_pickle=False), _arrays(entry, EXTRA)


def store(entry: Path, inputs: Mapping[str, np.ndarray], reference: Any, extras: Mapping[str, np.ndarray] | None = None) -> bool:
    """Write an entry atomically (temporary folder, then one rename). False, and nothing
    left behind, when it cannot be written or the reference is not one array."""
    if not isinstance(reference, np.ndarray) or entry.exists():
        return False
    tmp = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    try:
        tmp.mkdir(parents=False)
        for name, array in inputs.items():
            np.save(tmp / f"input.{name}.npy", np.asarray(array), allow_pickle=False)
        for name, array in (extras or {}).items():
            np.save(tmp / f"{EXTRA}{name}.npy", np.asarray(array), allow_pickle=False)
        np.save(tmp / f"{REFERENCE}.npy", reference, allow_pickle=False)
        (tmp / "complete").write_text("")
        tmp.rename(entry)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def create(root: Path) -> Path | None:
    """The run's cache folder, new; None when it cannot be made or already exists (a
    folder this run did not create is never used, nor later removed)."""
    try:
        root.mkdir(parents=True, exist_ok=False)
    except OSError:
        return None
    return root


def remove(path: Path) -> None:
    """An entry, or the whole folder at the end of the run (both this run's own)."""
    shutil.rmtree(path, ignore_errors=True)
