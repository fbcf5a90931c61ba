"""One bf16 mixed-precision training step (forward, backward, AdamW) of the small
decoder in workloads.decoder: what a Mac user's fine-tune or from-scratch run repeats.

Each call is one step on the next of `decoder.N_BATCHES` batches. The checked output is
the first step's loss; the curve over `steps` steps is judged by workloads.training.
"""

from __future__ import annotations

from dataclasses import replace

from workloads import training
from workloads.base import MODES


def _case(layers: int, d_model: int, heads: int, seq: int, batch: int, steps: int, lr: float = 1e-3) -> dict:
    return {"layers": layers, "d_model": d_model, "heads": heads, "seq": seq, "batch": batch, "steps": steps, "lr": lr, "data": "builtin"}


TRAIN_STEP = replace(training.training_workload(
    "train_step",
    "bf16 mixed-precision training step (fwd+bwd+AdamW) of a small decoder",
    {
        "quick": [_case(2, 64, 4, 32, 8, 8)],
        "full": [_case(4, 256, 8, 128, 16, 20), _case(8, 512, 8, 256, 8, 20)],
    },
    lora=False,
), modes=MODES)  # a step of many ops: measured eager and compiled
