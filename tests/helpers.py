"""Shared test helpers (conftest.py holds fixtures only): the fake framework's catalog
entry, a quick timing protocol, finders for result rows, and the catalog's frameworks
as pytest parameters that skip when a framework is not installed here."""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pytest

from bench import measure
from bench.catalog import FRAMEWORKS, FrameworkSpec
from workloads import params_key

FAKE = FrameworkSpec("fake", "tests.fake_framework:FakeAdapter", "numpy", "fake")

# A small sampling budget: tests check behaviour, not speed.
QUICK_PROTOCOL = measure.Protocol(budget_s=0.05, min_samples=5, max_samples=20, warmup_s=0.0, min_sample_s=1e-4)


def installed(framework: str) -> bool:
    """Whether the catalog's framework can be imported by this interpreter (which the
    runner's workers use by default), found without importing it into the test process."""
    try:
        return importlib.util.find_spec(FRAMEWORKS[framework].import_name) is not None
    except ModuleNotFoundError:  # the parent package of a dotted name ("mlx" of "mlx.core") is absent
        return False


def each_framework() -> list[Any]:
    """`catalog.FRAMEWORKS` as parameters; one not installed here is skipped, not failed."""
    return [
        pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"{name} is not installed ({spec.install_hint})"))
        for name, spec in FRAMEWORKS.items()
    ]


def installed_frameworks() -> list[str]:
    """The catalog's frameworks this interpreter has (for module-scoped runs over all of them)."""
    return [name for name in FRAMEWORKS if installed(name)]


def rows_where(rows: Iterable[Mapping[str, Any]], params: Mapping[str, Any] | None = None, **columns: Any) -> list[Mapping[str, Any]]:
    """The rows whose columns equal `columns` (and whose params are `params`, if given)."""
    want = dict(columns, **({"params": params_key(params)} if params is not None else {}))
    return [r for r in rows if all(r[k] == v for k, v in want.items())]


def one_row(rows: Iterable[Mapping[str, Any]], params: Mapping[str, Any] | None = None, **columns: Any) -> Mapping[str, Any]:
    found = rows_where(rows, params, **columns)
    assert len(found) == 1, f"{len(found)} rows match {columns} {params or ''}"
    return found[0]


def metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's workload figures (stored as JSON text, as every written row holds them)."""
    return json.loads(row["metrics"]) if row["metrics"] else {}


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Float32 tensors in the safetensors layout workloads.checkpoint reads (8-byte header
    length, JSON header, raw bytes): a tiny checkpoint without the safetensors package."""
    header: dict[str, Any] = {}
    blobs, offset = [], 0
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """The inverse of workloads.quant.pack_nibbles (the adapters unpack on the device)."""
    hi, lo = packed >> 4, packed & 0x0F
    return np.stack([hi, lo], axis=-1).reshape(packed.shape[0], -1)


def compiled_jax_generate(p: Mapping[str, Any], dtype: str = "fp32") -> tuple[Any, dict[str, np.ndarray]]:
    """A JAX adapter on the CPU set to build generate compiled, and the case's inputs as the
    worker hands them (seed 0): what the tests of JAX's compiles prepare from."""
    from bench.frameworks.jax.adapter import JaxAdapter
    from bench.precision import stored_inputs
    from workloads import WORKLOADS

    adapter = JaxAdapter(device="cpu")
    adapter.mode, adapter.suite = "compiled", "quick"
    return adapter, stored_inputs(WORKLOADS["generate"].make_inputs(p, np.random.default_rng(0)), dtype)


@contextmanager
def jax_compiles_logged(caplog: Any) -> Iterator[None]:
    """JAX logs each compile (jax_log_compiles) into caplog for the block, and stops after."""
    import jax

    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.DEBUG):
            yield
    finally:
        jax.config.update("jax_log_compiles", False)


__all__ = ["FAKE", "QUICK_PROTOCOL", "compiled_jax_generate", "each_framework", "installed", "installed_frameworks", "jax_compiles_logged",
           "metrics", "one_row", "params_key", "rows_where", "unpack_nibbles", "write_safetensors"]

# The mode each framework's multi-op workloads (train_step, lora, generate) run in the quick
# suite on a CPU; the other mode is skipped there (a C++ build per compiled function for
# torch and MLX, every primitive compiled for eager JAX). TF runs both; its compiled is XLA.
QUICK_CPU_MODE = {"torch": "eager", "tensorflow": "compiled", "jax": "compiled", "mlx": "eager"}
