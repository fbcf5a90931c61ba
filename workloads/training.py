"""What `train_step` and `lora` share: the batch, the float64 first-step loss, FLOP and
byte counts, and the verdict on a run's loss curve.

A training step mutates state, so one output cannot carry the whole check. The row's
verdict rests on three witnesses: the first step's loss against the float64 NumPy
forward (the reference), a loss curve over a fixed number of steps that must fall
(gathered by the adapter, judged here), and, in the tests, the four frameworks' curves
agreeing within `AGREEMENT_RTOL` (workers run in separate processes, so no row can see
another framework's; each row records the tolerance it is meant to meet).
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

import numpy as np

from workloads import corpus, decoder
from workloads.base import Inputs, Params, Workload

MIN_FALL = 0.02  # the loss after `steps` steps must be at least 2% below the first
AGREEMENT_RTOL = 0.02  # frameworks' final losses agree within this (relative to their mean)


def make_inputs(p: Params, rng: np.random.Generator, lora: bool) -> Inputs:
    tokens = corpus.batches(corpus.load(p.get("data")), decoder.N_BATCHES, p["batch"], p["seq"], rng)
    out: Inputs = {"tokens": tokens.astype(np.float64)}
    out.update(decoder.init(p, corpus.VOCAB, rng))
    if lora:
        out.update(decoder.init_lora(p, rng))
    return out


def lora_scale(p: Params) -> float:
    return p["lora_alpha"] / p["lora_rank"] if "lora_rank" in p else 1.0


def tree_of(x: Inputs, p: Params) -> dict[str, Any]:
    """The nested tree (base model, plus adapters when the params ask for LoRA)."""
    tree = decoder.nest(x, p["layers"])
    if "lora_rank" in p:
        tree = decoder.attach_lora(tree, decoder.nest_lora(x, p["layers"]))
    return tree


def reference(x: Inputs, p: Params) -> np.ndarray:
    """Loss of the first step (batch 0, initial weights) in float64."""
    inputs, targets = decoder.split_batch(np.asarray(x["tokens"][0], dtype=np.int64))
    tree = tree_of({k: np.asarray(v, dtype=np.float64) for k, v in x.items()}, p)
    return np.asarray(decoder.loss(decoder.NumpyOps(), tree, inputs, targets, p["heads"], lora_scale(p)))


def param_count(p: Params, lora: bool) -> int:
    shapes = decoder.lora_shapes(p) if lora else decoder.shapes(p, corpus.VOCAB)
    return int(sum(np.prod(s) for s in shapes.values()))


def step_flops(p: Params, lora: bool) -> float:
    """Full training: forward + backward ≈ 3× forward (activation and weight gradients).
    LoRA: forward + activation gradients through the whole frozen model (≈ 2× forward),
    plus the adapters' own forward, input and weight gradients (3× theirs)."""
    linear, attention = decoder.forward_flops(p, corpus.VOCAB)
    if not lora:
        return 3.0 * (linear + attention)
    return 2.0 * linear + 3.0 * attention + 3.0 * decoder.lora_forward_flops(p)


def step_bytes(p: Params, itemsize: int, lora: bool) -> float:
    """Parameter traffic only (a lower bound; activations are not counted): every weight
    read twice (forward, backward) at the compute itemsize, and AdamW reading p, g, m, v
    and writing p, m, v (fp32) for each trainable parameter."""
    total = param_count(p, lora=False) + (param_count(p, lora=True) if lora else 0)
    return float(2 * itemsize * total + 7 * 4 * param_count(p, lora))


def rates(p: Params, itemsize: int) -> dict[str, float]:
    return {"tokens_per_s": float(p["batch"] * p["seq"]), "samples_per_s": float(p["batch"])}


def assess(output: np.ndarray, x: Inputs, p: Params, dtype: str, metrics: dict[str, Any], extras: Inputs, lora: bool) -> list[str]:
    """Judge the curve the adapter recorded (its first point is the checked first step)."""
    problems = []
    curve = [float(v) for v in metrics.get("loss_curve", [])]
    metrics["reference_loss"] = float(reference(x, p))
    metrics["agreement_rtol"] = AGREEMENT_RTOL
    metrics["min_fall"] = MIN_FALL
    if len(curve) != p["steps"] or not np.all(np.isfinite(curve)):
        problems.append(f"loss curve has {len(curve)} finite-or-not points, expected {p['steps']} finite ones")
    else:
        metrics["loss_drop"] = 1.0 - curve[-1] / curve[0]
        if metrics["loss_drop"] < MIN_FALL:
            problems.append(f"loss did not fall by {MIN_FALL:.0%} in {p['steps']} steps ({curve[0]:.4f} -> {curve[-1]:.4f})")
    expected = param_count(p, lora)
    if metrics.get("trainable_params") != expected:
        problems.append(f"{metrics.get('trainable_params')} trainable parameters, expected {expected}")
    if lora and metrics.get("frozen_max_abs_change", 0.0) != 0.0:
        problems.append(f"frozen base weights changed (max |Δ| = {metrics['frozen_max_abs_change']:.3g})")
    return problems


def training_workload(name: str, summary: str, suites: dict[str, list[Params]], lora: bool) -> Workload:
    """train_step and lora share everything but the `lora` flag and their grids."""
    return Workload(
        name=name,
        summary=summary,
        dtypes=("bf16",),
        suites=suites,
        flops=partial(step_flops, lora=lora),
        bytes_moved=partial(step_bytes, lora=lora),
        make_inputs=partial(make_inputs, lora=lora),
        reference=reference,
        tolerance={"bf16": 2e-3},  # observed 1e-5..5e-5; a zeroed layer moves the loss ~7e-3
        precision_witness=False,
        assess=partial(assess, lora=lora),
        rates=rates,
        depends_on=(decoder, corpus, sys.modules[__name__]),
    )
