"""JAX adapter: the jax-metal PJRT plugin on Apple Silicon, CUDA, CPU.

Dispatch is asynchronous, so the barrier is `jax.block_until_ready`. Each workload is a
`jax.jit` function compiled before timing (its first call is the compile, timed apart).

Metal facts: jax-metal 0.1.1 registers the PJRT plugin "METAL" (upper case) and needs
jax==jaxlib==0.5.0 (jax#26968); community plugins register "mps", "mtl", "metal" or "mlx"
(bench.frameworks.jax.plugins). JAX matches platform names exactly (no lower-casing in
jax-v0.5.0 or since), so the adapter walks the registered backend names instead of asking
`jax.devices("metal")`, which never found jax-metal. jax-metal gaps are recorded as
`unsupported` with the plugin's own message: bf16 was never enabled (jax#16417) and
dot_generals with non-leading batch dims "failed to legalize operation 'mhlo.dot_general'"
(jax#20114: GQA attention and its gradients). `Device.memory_stats()` is None on CPU and has no peak reset (jax#8096): the
adapter reports a peak only when it rose during the case, which makes it this case's own.
fp32 dots default to TF32 on GPUs that have it, so fp32 forces
`jax_default_matmul_precision="highest"` (docs "Matmul precision").
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from bench.frameworks.base import Adapter, PeakMemory, Placement, Prepared, dist_versions, leaves, tf32_needs_ampere
from bench.frameworks.jax import plugins

_DTYPES = {"fp32": jnp.float32, "tf32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}
_PRECISION = {"fp32": "highest", "tf32": "tensorfloat32"}
_platform_backend = plugins.backend_of
# Messages with which Metal plugins refuse what they cannot compile (jax#16417, jax#20114,
# jax#20938: "failed to legalize operation", "data types are not supported").
_PLUGIN_REFUSALS = ("failed to legalize", "not supported", "unsupported", "UNIMPLEMENTED", "not implemented")


def _replaced_by(function: Any) -> str:
    """", replaced by <module>.<name> (<distribution>)" when a plugin swapped a jax function for
    its own: jax-mps's initialize() monkeypatches jax.nn.dot_product_attention with its fused
    kernel (jax_plugins/mps/ops.py patch_jax_functions), which runs when `implementation` is
    None; the label must name what ran. "" for jax's own function."""
    module = str(getattr(function, "__module__", "") or "")
    if module == "jax" or module.startswith(("jax.", "jaxlib")):
        return ""
    found = plugins.distribution_of(module)
    return f", replaced by {module}.{getattr(function, '__name__', '?')}" + (f" ({found[0]} {found[1]})" if found else "")


class JaxAdapter(Adapter):
    name = "jax"
    # JAX's eager mode compiles every primitive it meets on first use: 34 s before the first
    # tiny train step on a 2-core CPU (then 240 ms a step against 4.6 ms under jax.jit).
    quick_suite_skips = {("eager", "cpu"): "op-by-op JAX compiles each primitive on first use (~35 s for the tiny train step on 2 cores)"}

    def check_case_budget(self, workload: str, params: Mapping[str, Any], dtype: str) -> None:
        """Op-by-op generate at a large shape is skipped with its estimated time, measured on
        a small shape in this process (bench.frameworks.jax.generate.skip_eager_if_too_long)."""
        if workload == "generate" and self.mode == "eager":
            from bench.frameworks.jax.generate import skip_eager_if_too_long

            skip_eager_if_too_long(self, params, dtype)

    def _devices_by_backend(self) -> dict[str, Any]:
        """{backend: first device} over every registered JAX backend, by registered name
        (case-insensitive), highest registration priority first where two names map to
        one backend (two Metal plugins installed side by side)."""
        plugins.Registrations.install()
        from jax._src import xla_bridge as xb

        factories = getattr(xb, "_backend_factories", {})
        names = sorted(plugins.registered_backends(), key=lambda n: -getattr(factories.get(n), "priority", 0))
        found: dict[str, Any] = {}
        self._platform_names: dict[str, str] = {}
        for name in names:
            backend = plugins.backend_of(name)
            if backend is None or backend in found:
                continue
            try:
                devices = jax.devices(name)
            except (RuntimeError, ValueError):
                continue
            if devices:
                found[backend] = devices[0]
                self._platform_names[backend] = name
        return found

    def available_backends(self) -> list[str]:
        self._devices = self._devices_by_backend()
        return [b for b in ("metal", "cuda", "cpu") if b in self._devices]

    def missing_reason(self, backend: str) -> str:
        return plugins.missing_reason(backend)

    def activate_backend(self) -> None:
        self.device = self._devices[self.backend]
        jax.config.update("jax_default_device", self.device)
        self._peak_before: int | None = None

    def threads(self) -> int | None:
        """XLA:CPU sizes its pool from PJRT_NPROC, which the runner sets for --threads."""
        if self.backend != "cpu":
            return None
        return int(os.environ.get("PJRT_NPROC") or os.cpu_count() or 1)

    def device_name(self) -> str:
        """The device kind JAX reports; on Metal the chip instead when that kind is only the
        API's name (jax-metal's device is "Metal": "StreamExecutor device (0): Metal", jax#34109),
        so rows name the GPU they measured as torch's and MLX's do."""
        kind = str(getattr(self.device, "device_kind", self.device.platform))
        if self.backend == "metal" and kind.lower() in {"metal", "mps", "gpu", str(self.device.platform).lower()}:
            from bench.machine import cpu_name

            return f"{cpu_name()} ({kind})"
        return kind

    def compile_cache(self) -> str:
        """JAX's persistent compilation cache (jax_compilation_cache_dir, JAX_COMPILATION_CACHE_DIR);
        off by default. It keeps only compiles over jax_persistent_cache_min_compile_time_secs."""
        from bench.frameworks.base import describe_cache_dir

        folder = jax.config.jax_compilation_cache_dir
        text = describe_cache_dir("jax compilation cache", folder)
        return f"{text}, min compile {jax.config.jax_persistent_cache_min_compile_time_secs:g} s" if folder else text

    def versions(self) -> dict[str, str]:
        """jax first, then jaxlib, then the plugin distribution that provided the selected
        platform (`jax_plugin`, with its version under its own name) and the registered name."""
        found = {"jax": jax.__version__, **dist_versions("jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin")}
        name = self._platform_names.get(self.backend, self.backend)
        found["jax_platform"] = name
        if self.backend == "metal":
            provider = plugins.Registrations.provider(name)
            found["jax_plugin"] = provider[0] if provider else f"unknown (registered {name!r})"
            if provider:
                found[provider[0]] = provider[1]
        return found

    @property
    def plugin(self) -> str:
        return self.versions().get("jax_plugin", "")

    def tf32_unsupported_reason(self) -> str | None:
        if self.backend == "metal":
            return f"the JAX Metal plugin ({self.plugin}) exposes no TF32-class fp32 matmul mode"
        if self.backend == "cuda":
            major, _, minor = str(getattr(self.device, "compute_capability", "8.0")).partition(".")
            return tf32_needs_ampere((int(major), int(minor or 0)))
        return super().tf32_unsupported_reason()

    def set_math_mode(self, dtype: str) -> str:
        precision = _PRECISION.get(dtype, "default")
        jax.config.update("jax_default_matmul_precision", None if precision == "default" else precision)
        return f"jax_default_matmul_precision={precision}"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return jax.device_put(jnp.asarray(np.ascontiguousarray(x), dtype=_DTYPES[dtype]), self.device)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out.astype(jnp.float32))

    def matmul(self, a: Any, b: Any) -> Any:
        if not hasattr(self, "_matmul_jit"):
            self._matmul_jit = jax.jit(jnp.matmul)
        return self._matmul_jit(a, b)

    def placement(self, out: Any) -> Placement:
        """Every array of the output on the selected device (`Array.devices()`)."""
        found: set[Any] = set()
        for leaf in leaves(out):
            if hasattr(leaf, "devices"):
                found |= set(leaf.devices())
        if not found:
            return Placement(None, "no array in the output")
        where = f"outputs on {', '.join(sorted(map(str, found)))} of backend {self._platform_names.get(self.backend, self.backend)!r}, selected {self.device}"
        return Placement(found == {self.device}, where)

    def barrier(self, out: Any) -> None:
        # An array's own method skips the pytree walk of jax.block_until_ready (a few µs
        # a call, 5% of a small op's latency); trees (a training step's outputs) take the walk.
        wait = getattr(out, "block_until_ready", None)
        if wait is not None:
            wait()
        else:
            jax.block_until_ready(out)

    def unsupported_reason(self, exc: BaseException) -> str | None:
        """XLA refuses some dtype/op combinations per backend (e.g. fp16 dot_general with
        fp32 accumulation on XLA:CPU, what jitted fp16 attention lowers to)."""
        text = str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        if self.backend == "metal" and any(word in text for word in _PLUGIN_REFUSALS):
            # jax-metal raises XlaRuntimeError "UNKNOWN: ...: error: failed to legalize operation
            # 'mhlo.dot_general'" (jax#20114); bf16 fails to compile (jax#16417): the plugin's words.
            return f"{self.plugin} on Metal: {first}"
        if isinstance(exc, (ValueError, NotImplementedError)) or "UNIMPLEMENTED" in text:
            if "not supported" in text or "UNIMPLEMENTED" in text or "not implemented" in text.lower():
                return f"XLA on {self.backend}: {first}"
        return super().unsupported_reason(exc)

    def _peak_in_use(self) -> int | None:
        stats = self.device.memory_stats() if hasattr(self.device, "memory_stats") else None
        return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None

    def reset_peak_memory(self) -> None:
        try:
            self._peak_before = self._peak_in_use()
        except Exception:  # plugins without memory_stats raise anything from NotImplemented to XlaRuntimeError
            self._peak_before = None

    def peak_memory(self) -> PeakMemory:
        try:
            after = self._peak_in_use()
        except Exception as exc:
            return PeakMemory(None, f"memory_stats failed on {self.device.platform}: {exc}")
        if after is None:
            return PeakMemory(None, f"jax reports no memory statistics on {self.device.platform}; see peak_rss_bytes")
        if self._peak_before is None or after > self._peak_before:
            return PeakMemory(after, "peak_bytes_in_use (set during this case)")
        return PeakMemory(None, "jax cannot reset its peak (jax#8096) and this case stayed below an earlier case's peak")

    # -- workloads -------------------------------------------------------------------
    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        fn = jax.jit(jnp.matmul)
        return Prepared(lambda: fn(a, b), "jax.jit(jnp.matmul)")

    def prepare_stream(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        v = self.asarray(x["x"], dtype)
        fn = jax.jit(lambda v: v * 2)
        return Prepared(lambda: fn(v), "jax.jit(x * 2)")

    def prepare_sdpa(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        return self._attention(x, dtype, causal=bool(p["causal"]))

    def prepare_decode_attention(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        """Fewer K/V heads than query heads: jax.nn.dot_product_attention groups them natively."""
        return self._attention(x, dtype, causal=False)

    def prepare_bmm(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        fn = jax.jit(jnp.matmul)
        return Prepared(lambda: fn(a, b), "jax.jit(jnp.matmul) (batched)")

    def _attention(self, x: Mapping[str, np.ndarray], dtype: str, causal: bool) -> Prepared:
        # jax.nn.dot_product_attention takes (batch, seq, heads, dim): transpose outside the timed call.
        q, k, v = (self.asarray(np.swapaxes(x[n], 1, 2), dtype) for n in ("q", "k", "v"))
        impl = self._sdpa_implementation(q, k, v, causal)
        fn = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation=impl))
        return Prepared(
            lambda: fn(q, k, v),
            f"jax.nn.dot_product_attention(implementation={impl!r}){_replaced_by(jax.nn.dot_product_attention)}",
            checked=lambda out: jnp.swapaxes(out, 1, 2),  # back to (B, H, S, D), outside the timed call
        )

    def _sdpa_implementation(self, q: Any, k: Any, v: Any, causal: bool) -> str | None:
        """cuDNN's fused kernel where it accepts the case (5x XLA's on H100), else XLA."""
        if self.backend != "cuda":
            return None
        try:
            jax.block_until_ready(jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation="cudnn"))
            return "cudnn"
        except Exception:
            return "xla"

