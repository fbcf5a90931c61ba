"""Backend selection, sync and memory paths with a faked platform (no Mac, no GPU here).

Each test makes the framework's own probe report a Metal (or CUDA) device and checks that
the adapter selects it, calls that backend's barrier and memory API, and refuses a
backend that is absent instead of falling back.
"""

from __future__ import annotations

import sys
import types

import pytest

from bench.frameworks.base import BackendUnavailable, choose_backend


def test_choose_backend_prefers_metal_then_cuda_then_cpu_and_never_falls_back():
    assert choose_backend("auto", ["metal", "cpu"], "x") == "metal"
    assert choose_backend("auto", ["cuda", "cpu"], "x") == "cuda"
    assert choose_backend("cpu", ["metal", "cpu"], "x") == "cpu"
    with pytest.raises(BackendUnavailable, match=r"backend 'cuda' is not available here \(available: metal, cpu\)"):
        choose_backend("cuda", ["metal", "cpu"], "x")


class Recorder:
    def __init__(self, result=None):
        self.calls = 0
        self.result = result

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


# -- torch ---------------------------------------------------------------------------------
def test_torch_on_fake_mps(monkeypatch):
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch import adapter as pytorch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sync = Recorder()
    monkeypatch.setattr(torch.mps, "synchronize", sync)
    monkeypatch.setattr(torch.accelerator, "max_memory_allocated", Recorder(RuntimeError("MPS allocator not wired")))
    adapter = pytorch.TorchAdapter(device="auto")
    assert adapter.backend == "metal" and adapter.device.type == "mps"
    adapter.barrier(None)
    assert sync.calls == 1
    peak = adapter.peak_memory()
    assert peak.device_bytes is None and "mps" in peak.note
    assert "MPS" in adapter.tf32_unsupported_reason()


def test_torch_reports_accelerator_peak_on_mps_when_available(monkeypatch):
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch import adapter as pytorch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "max_memory_allocated", Recorder(12345))
    reset = Recorder()
    monkeypatch.setattr(torch.accelerator, "reset_peak_memory_stats", reset)
    adapter = pytorch.TorchAdapter(device="metal")
    adapter.reset_peak_memory()
    assert reset.calls == 1 and adapter.peak_memory().device_bytes == 12345


def test_torch_refuses_metal_where_there_is_none(monkeypatch):
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch import adapter as pytorch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable, match="'metal' is not available"):
        pytorch.TorchAdapter(device="metal")


def test_torch_fp32_forces_highest_and_tf32_asks_for_high():
    pytest.importorskip("torch")
    import torch

    from bench.frameworks.torch import adapter as pytorch

    adapter = pytorch.TorchAdapter(device="cpu")
    adapter.set_math_mode("tf32")
    assert torch.get_float32_matmul_precision() == "high"
    assert "highest" in adapter.set_math_mode("fp32")
    assert torch.get_float32_matmul_precision() == "highest"


# -- mlx -----------------------------------------------------------------------------------
def test_mlx_on_fake_metal(monkeypatch):
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import adapter as mlx_adapter

    monkeypatch.setattr(mx.metal, "is_available", lambda: True)
    chosen = Recorder()
    monkeypatch.setattr(mx, "set_default_device", chosen)
    monkeypatch.setattr(mx, "device_info", lambda: {"architecture": "applegpu_g16s", "device_name": "Apple M4 Max"})
    adapter = mlx_adapter.MLXAdapter(device="auto")
    assert adapter.backend == "metal" and chosen.calls == 1
    assert "M1-M4" in adapter.tf32_unsupported_reason()
    monkeypatch.setattr(mx, "device_info", lambda: {"architecture": "applegpu_g17s", "device_name": "Apple M5 Max"})
    assert adapter.tf32_unsupported_reason() is None


def test_mlx_barrier_evaluates_and_queue_starts_async_eval(monkeypatch):
    mx = pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import adapter as mlx_adapter

    evaluated, started = Recorder(), Recorder()
    adapter = mlx_adapter.MLXAdapter(device="cpu")
    monkeypatch.setattr(mx, "eval", evaluated)
    monkeypatch.setattr(mx, "async_eval", started)
    adapter.enqueue("out")
    adapter.barrier("out")
    assert (started.calls, evaluated.calls) == (1, 1)


def test_mlx_refuses_a_worker_started_with_the_wrong_tf32_setting(monkeypatch):
    pytest.importorskip("mlx.core")
    from bench.frameworks.mlx import adapter as mlx_adapter
    from bench.frameworks.base import Unsupported

    adapter = mlx_adapter.MLXAdapter(device="cpu")
    monkeypatch.setenv("MLX_ENABLE_TF32", "1")
    with pytest.raises(Unsupported, match="MLX_ENABLE_TF32=1"):
        adapter.set_math_mode("fp32")
    monkeypatch.setenv("MLX_ENABLE_TF32", "0")
    assert adapter.set_math_mode("fp32") == "MLX_ENABLE_TF32=0"


def test_catalog_starts_mlx_workers_with_tf32_off_except_for_tf32():
    from bench.catalog import FRAMEWORKS

    assert FRAMEWORKS["mlx"].worker_env("fp32")["MLX_ENABLE_TF32"] == "0"
    assert FRAMEWORKS["mlx"].worker_env("tf32")["MLX_ENABLE_TF32"] == "1"


# -- jax -----------------------------------------------------------------------------------
class FakeJaxDevice:
    def __init__(self, platform, kind):
        self.platform, self.device_kind = platform, kind

    def memory_stats(self):
        return None


def test_jax_math_mode_forces_highest_for_fp32():
    pytest.importorskip("jax")
    import jax

    from bench.frameworks.jax import adapter as jax_adapter

    adapter = jax_adapter.JaxAdapter(device="cpu")
    assert adapter.set_math_mode("fp32") == "jax_default_matmul_precision=highest"
    assert jax.config.jax_default_matmul_precision == "highest"


# Metal plugin selection is tested against faithful plugin fakes (a backend factory registered
# under jax-metal's "METAL" and the community names) in tests/test_metal_plugins.py; the fake
# that stood here answered jax.devices("metal") in lower case, which real jax-metal never does.


@pytest.mark.parametrize("platform", ["mps", "mtl", "METAL", "metal", "mlx"])
def test_jax_community_metal_plugins_count_as_metal(platform):
    from bench.frameworks.jax.adapter import _platform_backend

    assert _platform_backend(platform) == "metal"
    assert _platform_backend("gpu") == "cuda"


def test_jax_peak_is_reported_only_when_this_case_set_it():
    pytest.importorskip("jax")
    from bench.frameworks.jax import adapter as jax_adapter

    adapter = jax_adapter.JaxAdapter(device="cpu")
    stats = {"peak_bytes_in_use": 100}
    adapter.device = types.SimpleNamespace(platform="gpu", memory_stats=lambda: dict(stats))
    adapter.reset_peak_memory()
    stats["peak_bytes_in_use"] = 150
    assert adapter.peak_memory().device_bytes == 150
    adapter.reset_peak_memory()
    got = adapter.peak_memory()
    assert got.device_bytes is None and "jax#8096" in got.note


# -- tensorflow ----------------------------------------------------------------------------
def test_tensorflow_gpu_on_apple_silicon_is_metal(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from bench.frameworks.tensorflow import adapter as tf_adapter

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    monkeypatch.setattr(tf_adapter.sys, "platform", "darwin")
    monkeypatch.setattr(tf_adapter.platform, "machine", lambda: "arm64")
    soft = Recorder()
    monkeypatch.setattr(tf.config, "set_soft_device_placement", soft)
    adapter = tf_adapter.TensorFlowAdapter(device="auto")
    assert adapter.backend == "metal" and adapter.device == "/GPU:0"
    assert soft.calls == 1  # no silent CPU fallback for ops without a Metal kernel
    assert "tensorflow-metal" in adapter.tf32_unsupported_reason()


def test_tensorflow_gpu_elsewhere_is_cuda(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from bench.frameworks.tensorflow import adapter as tf_adapter

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    monkeypatch.setattr(tf_adapter.sys, "platform", "linux")
    monkeypatch.setattr(tf.config, "set_soft_device_placement", Recorder())
    assert tf_adapter.TensorFlowAdapter(device="cuda").backend == "cuda"


def test_tensorflow_barrier_uses_sync_devices(monkeypatch):
    pytest.importorskip("tensorflow")
    from bench.frameworks.tensorflow import adapter as tf_adapter

    adapter = tf_adapter.TensorFlowAdapter(device="cpu")
    sync = Recorder()
    adapter._sync = sync
    adapter.barrier(None)
    assert sync.calls == 1
