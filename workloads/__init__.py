"""Workload definitions: one module per workload, no framework imports.

The registry below is the one place a new workload is listed.
"""

from workloads.base import Workload, params_key
from workloads.bmm import BMM
from workloads.decode_attention import DECODE_ATTENTION
from workloads.generate import GENERATE
from workloads.lora import LORA
from workloads.matmul import MATMUL
from workloads.qmatmul import QMATMUL
from workloads.sdpa import SDPA
from workloads.stream import STREAM
from workloads.train_step import TRAIN_STEP

WORKLOADS: dict[str, Workload] = {w.name: w for w in (MATMUL, SDPA, STREAM, QMATMUL, TRAIN_STEP, LORA, GENERATE, DECODE_ATTENTION, BMM)}

__all__ = ["WORKLOADS", "Workload", "params_key"]
