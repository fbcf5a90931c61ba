"""Workload definitions: one module per workload, no framework imports.

The registry below is the one place a new workload is listed.
"""

from workloads.base import Workload, params_key
from workloads.matmul import MATMUL
from workloads.sdpa import SDPA

WORKLOADS: dict[str, Workload] = {w.name: w for w in (MATMUL, SDPA)}

__all__ = ["WORKLOADS", "Workload", "params_key"]
