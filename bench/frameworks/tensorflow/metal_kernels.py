"""What tensorflow-metal 1.2.0 registers, as far as the adapter's graphs need to know.

Source: the op-name strings of `libmetal_plugin.dylib` in the tensorflow_metal-1.2.0
macosx arm64 wheel (2,442 strings; shared/research/metal-readiness-2026-11-29.md, Part B).
An absent string is strong evidence, not proof, so this table is what the Linux tests hold
the graphs to (the faithful stand-in for the plugin's kernel registry), while on a real
Mac the run metadata of each case (TensorFlowAdapter.observing_placement) is the truth.

* Resource ops must run on the device of their variable: one without a Metal kernel makes
  placement fail ("Could not satisfy ..."), so the adapter's graphs must not contain any.
* Other ops without a Metal kernel are placed on the CPU silently inside a `tf.function`:
  the row is then partly a CPU measurement (placement_check "partial").
"""

from __future__ import annotations

from typing import Iterable

#: Present in libmetal_plugin.dylib (the ops the adapter's graphs rely on).
REGISTERED = frozenset(
    {
        "ResourceScatterNdUpdate",
        "TensorScatterUpdate",
        "AssignVariableOp",
        "AssignSubVariableOp",
        "AssignAddVariableOp",
        "BatchMatMulV2",
        "MatMul",
        "ResourceGather",
        "SparseSoftmaxCrossEntropyWithLogits",
        "Gelu",
        "Cast",
    }
)

#: Absent from libmetal_plugin.dylib. (Cast from uint8 is absent too: Cast is registered,
#: but not for a uint8 source, so a uint8 Cast node also runs on the CPU.)
NO_METAL_KERNEL = frozenset({"SyncDevice", "ResourceStridedSliceAssign", "Einsum", "BitwiseAnd", "RightShift"})


def _base(op: str) -> str:
    """oneDNN rewrites ops on x86 CPUs (`_MklEinsum`); the kernel question is about the TF op."""
    return op.removeprefix("_Mkl").removeprefix("_Fused")


def without_metal_kernel(op_types: Iterable[str]) -> set[str]:
    """The ops of a graph that tensorflow-metal cannot run."""
    return {op for op in op_types if _base(op) in NO_METAL_KERNEL}


def unplaceable_on_metal(op_types: Iterable[str]) -> set[str]:
    """Resource ops without a Metal kernel: these make the whole case fail on Metal."""
    return {op for op in without_metal_kernel(op_types) if op.startswith("Resource")}
