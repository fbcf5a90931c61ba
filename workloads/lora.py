"""LoRA fine-tuning of the same small decoder: the base frozen, rank-r adapters on the
attention query and value projections (scale alpha/r, as peft), only adapters train.

Each call is one AdamW step of the adapters. Beyond the first-step loss and the falling
curve (workloads.training), a row is correct only if exactly the adapter parameters were
trainable and the frozen base weights did not move.
"""

from __future__ import annotations

from dataclasses import replace

from workloads import training
from workloads.base import MODES


def _case(layers: int, d_model: int, heads: int, seq: int, batch: int, steps: int, rank: int, alpha: int, lr: float = 1e-2) -> dict:
    """LoRA's few parameters take a larger learning rate than full training (1e-2)."""
    return {
        "layers": layers, "d_model": d_model, "heads": heads, "seq": seq, "batch": batch, "steps": steps,
        "lora_rank": rank, "lora_alpha": alpha, "lr": lr, "data": "builtin",
    }


LORA = replace(training.training_workload(
    "lora",
    "LoRA fine-tune (rank-r adapters on q, v; base frozen) of the small decoder, bf16 compute",
    {
        "quick": [_case(2, 64, 4, 32, 8, 8, 8, 16)],
        "full": [_case(4, 256, 8, 128, 16, 20, 8, 16), _case(8, 512, 8, 256, 8, 20, 16, 32)],
    },
    lora=True,
), modes=MODES)  # a step of many ops: measured eager and compiled
