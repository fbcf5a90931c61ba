"""TensorFlow adapter: tensorflow-metal (PluggableDevice "GPU") on Apple Silicon, CUDA, CPU.

Metal and CUDA both appear as 'GPU'; which one it is comes from the platform (the
Metal plugin only exists on macOS arm64). Soft device placement is turned off so an op
without a GPU kernel raises (recorded as unsupported) instead of running on the CPU
unseen. `jit_compile=True` fails on Metal ("Could not find compiler for platform METAL",
NVlabs/sionna#78), so graphs are plain `tf.function`s everywhere, for like-for-like.
The barrier is `tf.test.experimental.sync_devices()` (TF >= 2.12, eager only) on CUDA
and CPU, and a host read of the output on Metal: `sync_devices` runs the `SyncDevice` op,
whose kernel is empty outside CUDA/ROCm builds (tensorflow/core/kernels/sync_ops.cc), and
tensorflow-metal 1.2.0 registers none (no `SyncDevice` string in libmetal_plugin.dylib;
shared/research/metal-readiness-2026-11-29.md), so on the PluggableDevice it returns at
once. fp32 turns TF32 off with `tf.config.experimental.enable_tensor_float_32_execution(False)`,
since TF enables it by default on GPUs that have it.

Placement: with soft placement off an *explicit* device request without a kernel raises,
but inside a `tf.function` the placer still puts an op that has no kernel on the GPU on
the CPU, silently (tensorflow-metal has no `Einsum`, `BitwiseAnd`, `RightShift`, uint8
`Cast`). The graph's run metadata, recorded while the case's functions are first
instantiated (`observing_placement`), names those ops; the row records them and is
never ranked as a GPU row. Eager ops are another matter: TF records an eager op's placement
in the run metadata only when its kernel is first created in the process, so from the second
eager case of a worker on, an `Einsum` on the host went unrecorded (shown on TF 2.21:
shared/research/metal-check-2026-12-03.md §2 item 4). Op-by-op steps therefore run under an
explicit `tf.device` (`on_device`), where soft placement off makes a missing kernel raise.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections import Counter
from typing import Any, Iterator, Mapping

import numpy as np
import tensorflow as tf

from bench.frameworks.base import Adapter, PeakMemory, Placement, Prepared, dist_versions, leaves

_DTYPES = {"fp32": tf.float32, "tf32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}


# Ops a placed graph always has on the host whatever the device (arguments, transfers,
# constants feeding shapes): not computation, so not evidence of a CPU fallback.
_BOOKKEEPING_OPS = frozenset(
    {"_Arg", "_Retval", "_DeviceArg", "_DeviceRetval", "_Send", "_Recv", "_HostSend", "_HostRecv", "NoOp", "Const", "Identity", "IdentityN"}
)


_INDEX_DTYPES = frozenset({tf.int32.as_datatype_enum, tf.int64.as_datatype_enum, tf.bool.as_datatype_enum})


def _is_index_op(node: Any) -> bool:
    """Shape and index arithmetic (int32/int64/bool): TF keeps such ops in host memory on
    GPUs too, so they say nothing about where the numbers were computed."""
    types = [node.attr[key].type for key in ("T", "dtype", "DstT") if key in node.attr]
    return bool(types) and all(t in _INDEX_DTYPES for t in types)


def host_ops_of(run_metadata: Any, expected_type: str) -> dict[str, int]:
    """Count, per op type, the computing ops of the recorded function graphs that were
    placed on a CPU although `expected_type` ("GPU") was selected."""
    if expected_type == "CPU":
        return {}
    found: Counter[str] = Counter()
    for function_graph in run_metadata.function_graphs:
        for graph in function_graph.partition_graphs:
            for node in graph.node:
                if node.op in _BOOKKEEPING_OPS or not node.device or _is_index_op(node):
                    continue
                if tf.DeviceSpec.from_string(node.device).device_type == "CPU":
                    found[node.op] += 1
    return dict(found)


def _gpu_backend() -> str:
    return "metal" if sys.platform == "darwin" and platform.machine() == "arm64" else "cuda"


class TensorFlowAdapter(Adapter):
    name = "tensorflow"

    def configure_threads(self, threads: int | None) -> None:
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

    def available_backends(self) -> list[str]:
        gpus = tf.config.list_physical_devices("GPU")
        return ([_gpu_backend()] if gpus else []) + ["cpu"]

    def missing_reason(self, backend: str) -> str:
        if backend != _gpu_backend():
            return f"a TensorFlow 'GPU' here would be {_gpu_backend()}, not {backend}"
        if backend == "metal":
            plugin = dist_versions("tensorflow-metal", "tensorflow-metal-plugin")
            have = ", ".join(f"{k} {v}" for k, v in plugin.items()) or "no Metal PluggableDevice plugin installed"
            return f"tf.config.list_physical_devices('GPU') is empty ({have})"
        return f"tf.config.list_physical_devices('GPU') is empty (built with CUDA: {tf.test.is_built_with_cuda()})"

    def activate_backend(self) -> None:
        if self.backend == "cpu":
            tf.config.set_visible_devices([], "GPU")
            self.device = "/CPU:0"
        else:
            self.device = "/GPU:0"
        tf.config.set_soft_device_placement(False)
        self._sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)

    def threads(self) -> int | None:
        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()

    def device_name(self) -> str:
        if self.backend != "cpu":
            gpu = tf.config.list_physical_devices("GPU")[0]
            details = tf.config.experimental.get_device_details(gpu)
            return str(details.get("device_name") or gpu.name)
        return super().device_name()

    def versions(self) -> dict[str, str]:
        return {"tensorflow": tf.__version__, **dist_versions("tensorflow-metal", "keras")}

    def compile_cache(self) -> str:
        """XLA's persistent cache for jit_compile=True functions, set only through
        TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR; off by default."""
        from bench.frameworks.base import describe_cache_dir

        folder = None
        for flag in os.environ.get("TF_XLA_FLAGS", "").split():
            if flag.startswith("--tf_xla_persistent_cache_directory="):
                folder = flag.partition("=")[2]
        return describe_cache_dir("tf xla persistent cache", folder)

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal":
            return "tensorflow-metal exposes no TF32-class fp32 matmul mode"
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        on = dtype == "tf32"
        tf.config.experimental.enable_tensor_float_32_execution(on)
        return f"enable_tensor_float_32_execution({on})"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        with tf.device(self.device):
            return tf.cast(tf.constant(np.ascontiguousarray(x)), _DTYPES[dtype])

    def to_numpy(self, out: Any) -> np.ndarray:
        return tf.cast(out, tf.float32).numpy()

    def barrier(self, out: Any) -> None:
        if self._sync is not None and self.backend != "metal":
            self._sync()
        else:  # Metal (SyncDevice is a no-op there) and TF < 2.12: a host read waits for the producing ops
            self._host_read(out)

    @staticmethod
    def _host_read(out: Any) -> None:
        """Copy one element of every output tensor to the host: the copy cannot start
        before the op that produced the tensor has finished."""
        for t in leaves(out):
            if isinstance(t, (tf.Tensor, tf.Variable)):
                tf.reshape(t, [-1])[:1].numpy()

    def matmul(self, a: Any, b: Any) -> Any:
        with tf.device(self.device):
            return tf.linalg.matmul(a, b)

    def on_device(self, fn: Any) -> Any:
        """`fn`, run op by op under `tf.device(self.device)`. An eager op with no explicit device
        goes wherever it has a kernel; under an explicit device with soft placement off (set in
        activate_backend) an op without a kernel there raises InvalidArgumentError "Could not
        satisfy device specification '...GPU:0'. enable_soft_placement=0. Supported device types
        [CPU]" (TF 2.21, reproduced in tests/test_tf_metal.py; tf.config.get_soft_device_placement
        docs: "If disabled, the placement is strict and CPU fallback is not allowed"), which
        unsupported_reason makes an `unsupported` row instead of a GPU row partly timed on the host."""
        def pinned(*args: Any, **kwargs: Any) -> Any:
            with tf.device(self.device):
                return fn(*args, **kwargs)
        return pinned

    def _expected_device_type(self) -> str:
        return tf.DeviceSpec.from_string(self.device).device_type or "CPU"

    @contextlib.contextmanager
    def observing_placement(self) -> Iterator[None]:
        """Record the run metadata of every function first instantiated inside (TF exports a
        function graph's placement only at instantiation, so this spans the build and the
        first call). Eager `context.enable_run_metadata` is the TF2 form of RunOptions."""
        from tensorflow.python.eager import context

        self._host_ops: dict[str, int] | None = None
        ctx = context.context()
        ctx.enable_run_metadata()
        try:
            yield
        finally:
            metadata = ctx.export_run_metadata()
            ctx.disable_run_metadata()
            if metadata is not None:
                self._host_ops = host_ops_of(metadata, self._expected_device_type())

    def placement(self, out: Any) -> Placement:
        expected = self._expected_device_type()
        found = sorted({t.device for t in leaves(out) if isinstance(t, (tf.Tensor, tf.Variable))})
        if not found:
            return Placement(None, "no tensor in the output")
        ok = all(tf.DeviceSpec.from_string(d).device_type == expected for d in found)
        where = f"outputs on {', '.join(d.rsplit('/', 1)[-1] for d in found)}, selected {expected}"
        host_ops = getattr(self, "_host_ops", None)
        if host_ops is None and expected != "CPU":
            where += " (no run metadata: op placement unknown)"
        return Placement(ok, where, host_ops or {})

    def unsupported_reason(self, exc: BaseException) -> str | None:
        """With soft placement off, an op without a kernel on this device raises
        NotFoundError/InvalidArgumentError naming the missing kernel."""
        text = str(exc)
        if isinstance(exc, (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)) and (
            "No registered" in text or "Could not satisfy" in text or "not supported" in text or isinstance(exc, tf.errors.UnimplementedError)
        ):
            return f"TensorFlow on {self.backend}: {text.strip().splitlines()[0]}"
        return super().unsupported_reason(exc)

    def reset_peak_memory(self) -> None:
        if self.backend != "cpu":
            try:
                tf.config.experimental.reset_memory_stats("GPU:0")
            except (ValueError, RuntimeError):
                pass

    def peak_memory(self) -> PeakMemory:
        if self.backend == "cpu":
            return PeakMemory(None, "TensorFlow keeps no allocator statistics for CPU; see peak_rss_bytes")
        try:
            peak = int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        except (ValueError, RuntimeError, KeyError) as exc:
            return PeakMemory(None, f"get_memory_info failed on {self.backend}: {exc}")
        if peak <= 0:  # a case on the device allocated something: 0 means "no statistics", not "no memory"
            return PeakMemory(
                None,
                f"get_memory_info('GPU:0') reports peak 0 on {self.backend}: the PluggableDevice simple allocator keeps "
                "no statistics (pluggable_device_simple_allocator.cc GetStats); see peak_rss_bytes",
            )
        return PeakMemory(peak, "get_memory_info('GPU:0')['peak']")

    # -- workloads -------------------------------------------------------------------
    def _graph(self, fn: Any) -> Any:
        return tf.function(fn, jit_compile=False)  # shapes are fixed per case: one trace

    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        fn = self._graph(tf.linalg.matmul)
        return Prepared(lambda: fn(a, b), "tf.function(tf.linalg.matmul)")

    def prepare_stream(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        v = self.asarray(x["x"], dtype)
        fn = self._graph(lambda v: v * 2)
        return Prepared(lambda: fn(v), "tf.function(x * 2)")

    def prepare_sdpa(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return self._attention(x, dtype, causal=bool(p["causal"]))

    def prepare_decode_attention(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return self._attention(x, dtype, causal=False)

    def prepare_bmm(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        fn = self._graph(tf.linalg.matmul)
        return Prepared(lambda: fn(a, b), "tf.function(tf.linalg.matmul) (batched)")

    def _attention(self, x: Mapping[str, np.ndarray], dtype: str, causal: bool) -> Prepared:
        import keras

        # keras.ops.dot_product_attention takes (batch, seq, heads, dim); on the TF backend it is
        # einsum -> softmax -> einsum (no fused kernel), hence "composed" in the implementation,
        # and fewer K/V heads than query heads are tf.repeat-ed to match inside the graph.
        q, k, v = (self.asarray(np.swapaxes(x[n], 1, 2), dtype) for n in ("q", "k", "v"))
        gqa = ", K/V heads repeated by tf.repeat" if q.shape[2] != k.shape[2] else ""
        fn = self._graph(lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=causal))
        return Prepared(
            lambda: fn(q, k, v),
            f"keras.ops.dot_product_attention (composed: einsum-softmax-einsum{gqa})",
            checked=lambda out: tf.transpose(out, [0, 2, 1, 3]),  # back to (B, H, S, D), outside the timed call
        )

