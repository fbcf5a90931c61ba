"""Small Metal gaps found by the 2026-12-03 check (shared/research/metal-check-2026-12-03.md §5 item 7),
each against the real plugin file or the real tool's behaviour."""

from __future__ import annotations

import types

import pytest

from bench import doctor
from bench.catalog import FrameworkSpec
from tests import fake_plugins


def test_jax_mps_attention_rows_name_the_fused_kernel_the_plugin_swapped_in(tmp_path):
    """jax-mps's own initialize() replaces jax.nn.dot_product_attention with its fused kernel
    (jax_plugins/mps/ops.py patch_jax_functions, used when implementation is None): the label
    said `implementation=None` as if JAX's own function ran."""
    pytest.importorskip("jax")
    site = fake_plugins.install(tmp_path, fake_plugins.JAX_MPS)
    got = fake_plugins.run_python(site, """
        import json
        import numpy as np
        from bench.frameworks.jax.adapter import JaxAdapter
        a = JaxAdapter(device="metal")
        x = {n: np.ones((1, 2, 8, 16), np.float32) for n in ("q", "k", "v")}
        print(json.dumps(a.prepare_sdpa({"causal": True}, "fp32", x).implementation))
    """)
    assert got.startswith("jax.nn.dot_product_attention(implementation=None), replaced by jax_plugins.mps.ops.")
    assert got.endswith("(jax-mps 0.11.1)")


def test_jax_attention_rows_without_a_plugin_patch_keep_jax_s_label():
    pytest.importorskip("jax")
    import numpy as np

    from bench.frameworks.jax.adapter import JaxAdapter

    a = JaxAdapter(device="cpu")
    x = {n: np.ones((1, 2, 8, 16), np.float32) for n in ("q", "k", "v")}
    assert a.prepare_sdpa({"causal": True}, "fp32", x).implementation == "jax.nn.dot_product_attention(implementation=None)"


def test_jax_metal_rows_name_the_chip_not_the_api():
    """jax-metal's device kind is "Metal" ("StreamExecutor device (0): Metal", jax#34109's log)."""
    pytest.importorskip("jax")
    from bench.frameworks.jax.adapter import JaxAdapter
    from bench.machine import cpu_name

    a = JaxAdapter(device="cpu")
    a.backend, a.device = "metal", types.SimpleNamespace(device_kind="Metal", platform="METAL")
    assert a.device_name() == f"{cpu_name()} (Metal)"
    a.device = types.SimpleNamespace(device_kind="Apple M4 Max", platform="mps")
    assert a.device_name() == "Apple M4 Max"


def test_env_offers_no_install_command_for_an_installed_framework_without_the_backend(monkeypatch, capsys):
    import bench.runner
    from bench.cli import main

    class Worker:
        def __init__(self, spec, *args):
            self.spec = spec

        def await_hello(self, *args):  # as a worker answers: installed without Metal, or not installed
            if self.spec.name == "torch":
                return {"type": "hello", "ok": False, "status": "error",
                        "reason": "torch: backend 'metal' is not available here (available: cpu)"}
            return {"type": "hello", "ok": False, "status": "skipped", "reason": f"{self.spec.name} is not installed"}

        def close(self):
            pass

    monkeypatch.setattr(bench.runner, "WorkerProcess", Worker)
    assert main(["env", "--device", "metal"]) == 0
    rows = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") > 4}
    assert "pip install" not in rows["torch"]  # it is installed; `bench doctor` says why there is no Metal
    assert "pip install 'metalbench[mlx]'" in rows["mlx"]


def test_a_backend_whose_placement_probe_raised_is_not_usable():
    spec = FrameworkSpec("fails", "tests.fake_framework:PlacementProbeFailsAdapter", "numpy", "fake")
    table = doctor.diagnose({"fails": spec}, {})
    cpu = next(r for r in table if r["backend"] == "cpu")
    assert cpu["found"] == "yes" and cpu["placement"].startswith("error: RuntimeError")
    assert not doctor.usable(cpu)
    assert doctor.verdict(table, "cpu")[0] == doctor.EXIT_NOTHING


def test_a_torch_accelerator_peak_of_zero_is_null_with_the_reason(monkeypatch):
    """torch.accelerator.max_memory_allocated() is memory_stats().get(..., 0), and memory_stats()
    is empty while the allocator is not initialised (torch/accelerator/memory.py): a real 0."""
    torch = pytest.importorskip("torch")
    from bench.frameworks.torch import adapter as torch_adapter

    monkeypatch.setattr(torch._C, "_accelerator_isAllocatorInitialized", lambda: False, raising=False)
    if not hasattr(torch, "accelerator") or not hasattr(torch.accelerator, "max_memory_allocated"):
        pytest.skip("this torch has no torch.accelerator memory API")
    assert torch.accelerator.max_memory_allocated() == 0  # the real function, as on an MPS machine before any allocation
    peak = torch_adapter._accelerator_peak("mps")
    assert peak.device_bytes is None and "is 0 on mps" in peak.note
