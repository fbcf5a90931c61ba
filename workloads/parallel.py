"""Host-side array work spread over the CPUs this process may use.

A Qwen2.5-0.5B-shaped `generate` case draws ~0.5 billion seeded weights, rounds them to
the row's dtype, quantizes ~170 matrices and converts the model to float64 for its
reference and greedy checks: on one core that was ~30 s (dense) to ~50 s (int4) of a
case's set-up, repeated in every case of the full suite, while the lent GPU host's other
15 cores idled. NumPy releases the GIL inside its casting and ufunc loops and its random
fills, so a thread pool over independent arrays (or row blocks of one) runs them side by
side; the results do not depend on the number of threads (each block's generator is
fixed by its index, never by which thread ran it).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Mapping, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

BLOCK_ELEMENTS = 1 << 24  # a block of a large array drawn by one generator: 16M elements (64 MB float32)


def cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS: no affinity call
        return os.cpu_count() or 1


def thread_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], on up to cpus() threads; in order; the first error raises."""
    items = list(items)
    workers = min(cpus(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def map_values(fn: Callable[[Any], Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
    """{name: fn(array)} for every entry, the arrays converted side by side."""
    names = list(arrays)
    return dict(zip(names, thread_map(lambda name: fn(arrays[name]), names)))


def normal_arrays(rng: np.random.Generator, specs: Mapping[str, tuple[Any, float, float]]) -> dict[str, np.ndarray]:
    """{name: N(mean, std²) float32 array of shape} for specs {name: (shape, std, mean)}.
    Every array is cut into row blocks of at most BLOCK_ELEMENTS, and block i of the whole
    list is drawn by the i-th generator spawned from `rng`: the same arrays for one seed,
    whatever the thread count."""
    out = {name: np.empty(shape, dtype=np.float32) for name, (shape, _, _) in specs.items()}
    blocks: list[tuple[np.ndarray, float, float]] = []
    for name, (_, std, mean) in specs.items():
        flat = out[name].reshape(out[name].shape[0], -1) if out[name].ndim > 1 else out[name].reshape(1, -1)
        rows = max(1, BLOCK_ELEMENTS // max(1, flat.shape[1]))
        blocks += [(flat[i : i + rows], std, mean) for i in range(0, flat.shape[0], rows)]
    generators = rng.spawn(len(blocks))

    def fill(i: int) -> None:
        block, std, mean = blocks[i]
        generators[i].standard_normal(out=block, dtype=np.float32)
        block *= np.float32(std)
        if mean:
            block += np.float32(mean)

    thread_map(fill, range(len(blocks)))
    return out
