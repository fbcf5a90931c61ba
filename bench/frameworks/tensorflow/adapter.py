"""TensorFlow adapter: tensorflow-metal (PluggableDevice "GPU") on Apple Silicon, CUDA, CPU.

Metal and CUDA both appear as 'GPU'; which one it is comes from the platform (the
Metal plugin only exists on macOS arm64). Soft device placement is turned off so an op
without a GPU kernel raises (recorded as unsupported) instead of running on the CPU
unseen. `jit_compile=True` fails on Metal ("Could not find compiler for platform METAL",
NVlabs/sionna#78), so graphs are plain `tf.function`s everywhere, for like-for-like.
The barrier is `tf.test.experimental.sync_devices()` (TF >= 2.12, eager only); fp32
turns TF32 off with `tf.config.experimental.enable_tensor_float_32_execution(False)`,
since TF enables it by default on GPUs that have it.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.frameworks.base import Adapter, PeakMemory, Prepared, dist_versions  # noqa: E402

_DTYPES = {"fp32": tf.float32, "tf32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}


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
        from bench.machine import cpu_name

        return cpu_name()

    def versions(self) -> dict[str, str]:
        return {"tensorflow": tf.__version__, **dist_versions("tensorflow-metal", "keras")}

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
        if self._sync is not None:
            self._sync()
        else:  # TF < 2.12: a host read of one element waits for the producing op
            tf.reshape(out, [-1])[0].numpy()

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
            return PeakMemory(int(tf.config.experimental.get_memory_info("GPU:0")["peak"]), "get_memory_info('GPU:0')['peak']")
        except (ValueError, RuntimeError, KeyError) as exc:
            return PeakMemory(None, f"get_memory_info failed on {self.backend}: {exc}")

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

