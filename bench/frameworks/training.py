"""The part of a training workload that is the same in every adapter: turning a
framework's `step(batch_index)` into a Prepared whose first call is the checked first
step and whose `metrics` records the loss curve.

The curve is taken right after the check, over the fixed number of steps the workload
asks for, so it is the same sequence of batches in every framework (batch i mod
`decoder.N_BATCHES`); reading each loss back forces a sync, which is why recording
stops before timing starts. Steps taken while timing keep training the same model.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping

import numpy as np

from bench.frameworks.base import Prepared
from workloads import decoder


def training_prepared(
    step: Callable[[int], Any],
    *,
    loss_of: Callable[[Any], float],
    steps: int,
    implementation: str,
    trainable_params: int,
    checked: Callable[[Any], Any] = lambda out: out,
    frozen: Callable[[], Mapping[str, np.ndarray]] | None = None,
    mode: str = "eager",
) -> Prepared:
    """`loss_of(out)` reads a step's loss to the host; `frozen()` returns the weights
    that must not train (LoRA's base), snapshotted now and compared after the curve."""
    batch_index = itertools.count()
    curve: list[float] = []
    recording = True
    frozen_before = {k: np.array(v, copy=True) for k, v in frozen().items()} if frozen else None

    def call() -> Any:
        out = step(next(batch_index) % decoder.N_BATCHES)
        if recording:
            curve.append(loss_of(out))
        return out

    def metrics() -> dict[str, Any]:
        nonlocal recording
        while len(curve) < steps:
            call()
        recording = False
        found: dict[str, Any] = {"loss_curve": curve[:steps], "trainable_params": int(trainable_params)}
        if frozen is not None and frozen_before is not None:
            after = frozen()
            found["frozen_max_abs_change"] = max(float(np.max(np.abs(np.asarray(after[k]) - v))) for k, v in frozen_before.items())
        return found

    return Prepared(call, implementation, checked=checked, metrics=metrics, mode=mode)


def training_entry_points(prepare_training: Callable[..., Prepared]) -> tuple[Callable[..., Prepared], Callable[..., Prepared]]:
    """`prepare_train_step` and `prepare_lora` for a framework's ops module, from its one
    `prepare_training(adapter, p, dtype, x, lora)`: `Adapter.prepare` finds workloads by the
    name `prepare_<workload>`, and the two workloads differ only in the `lora` flag."""

    def prepare_train_step(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return prepare_training(adapter, p, dtype, x, lora=False)

    def prepare_lora(adapter: Any, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return prepare_training(adapter, p, dtype, x, lora=True)

    return prepare_train_step, prepare_lora
