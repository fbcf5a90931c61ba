"""TensorFlow Metal findings 2-5 against a fake that behaves as tensorflow-metal 1.2.0 does
(shared/research/metal-readiness-2026-11-29.md): `sync_devices` returns at once on the
PluggableDevice, `get_memory_info` reports a peak of 0, and the ops named in
bench.frameworks.tensorflow.metal_kernels have no Metal kernel."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from bench.frameworks.tensorflow import adapter as tf_adapter  # noqa: E402
from bench.frameworks.tensorflow import metal_kernels  # noqa: E402
from bench.summary import not_ranked_reason  # noqa: E402


class Recorder:
    def __init__(self, result=None):
        self.calls, self.result = 0, result

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.result


@pytest.fixture
def metal(monkeypatch):
    """A TF adapter that believes it runs on tensorflow-metal: a 'GPU' on macOS arm64, whose
    sync_devices is the no-op the PluggableDevice has and whose allocator reports peak 0."""
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    monkeypatch.setattr(tf_adapter.sys, "platform", "darwin")
    monkeypatch.setattr(tf_adapter.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(tf.config, "set_soft_device_placement", Recorder())
    monkeypatch.setattr(tf.config.experimental, "get_memory_info", lambda device: {"current": 0, "peak": 0})
    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", Recorder())
    adapter = tf_adapter.TensorFlowAdapter(device="metal")
    adapter._sync = Recorder()  # SyncDevice: empty Compute outside CUDA/ROCm, no Metal kernel
    return adapter


def test_metal_barrier_is_a_host_read_not_the_no_op_sync_devices(metal, monkeypatch):
    reads = []
    real_reshape = tf.reshape
    monkeypatch.setattr(tf, "reshape", lambda t, shape: reads.append(t) or real_reshape(t, shape))
    out = (tf.ones((3, 3)), tf.zeros((2,)))
    metal.barrier(out)
    assert metal._sync.calls == 0
    assert len(reads) == 2  # one element of every output tensor reached the host


def test_cuda_and_cpu_keep_sync_devices(monkeypatch):
    adapter = tf_adapter.TensorFlowAdapter(device="cpu")
    adapter._sync = Recorder()
    adapter.barrier(tf.ones(2))
    assert adapter._sync.calls == 1


def test_a_peak_of_zero_on_the_pluggable_device_is_null_with_the_reason(metal):
    metal.reset_peak_memory()
    peak = metal.peak_memory()
    assert peak.device_bytes is None
    assert "peak 0" in peak.note and "simple allocator" in peak.note


def test_prefill_writes_the_cache_only_with_ops_tensorflow_metal_registers():
    from bench.frameworks.tensorflow.generate import TFLlamaOps
    from workloads.generate import tiny

    p = tiny()
    ops = TFLlamaOps(p)
    b, t, h, hd = 1, 5, p["kv_heads"], ops.hd
    caches = (tf.Variable(tf.zeros((b, 8, h, hd))), tf.Variable(tf.zeros((b, 8, h, hd))))
    k = tf.constant(np.random.default_rng(0).standard_normal((b, t, h, hd)), tf.float32)
    q = tf.constant(np.random.default_rng(1).standard_normal((b, t, p["heads"], hd)), tf.float32)
    fn = tf.function(lambda q, k: ops.attend(q, k, k, caches, 0)[0])
    graph_ops = {op.type for op in fn.get_concrete_function(q, k).graph.get_operations()}
    assert metal_kernels.unplaceable_on_metal(graph_ops) == set()  # was {'ResourceStridedSliceAssign'}
    assert "ResourceScatterNdUpdate" in graph_ops
    fn(q, k)
    assert np.array_equal(caches[0].numpy()[:, :t], k.numpy()) and not caches[0].numpy()[:, t:].any()


def test_keras_attention_needs_einsum_which_metal_lacks():
    """Finding 4: TF's attention graph holds Einsum, so on Metal it is placed on the CPU."""
    import keras

    q = tf.ones((1, 4, 2, 8))
    fn = tf.function(lambda q: keras.ops.dot_product_attention(q, q, q, is_causal=True))
    graph_ops = {op.type for op in fn.get_concrete_function(q).graph.get_operations()}
    assert "Einsum" in metal_kernels.without_metal_kernel(graph_ops)


def test_ops_placed_on_the_host_are_recorded_and_the_row_is_not_ranked(monkeypatch):
    """The run metadata of a real function instantiation: with a GPU selected, every
    computing op that landed on a CPU is named (here all of them: this machine has no GPU)."""
    adapter = tf_adapter.TensorFlowAdapter(device="cpu")
    monkeypatch.setattr(adapter, "_expected_device_type", lambda: "GPU")
    a = adapter.asarray(np.ones((4, 4)), "fp32")
    fn = adapter._graph(lambda a: tf.einsum("ij,jk->ik", a, a) * tf.cast(tf.shape(a)[0] * 2, a.dtype))
    with adapter.observing_placement():
        out = fn(a)
    placement = adapter.placement(out)
    assert placement.ok is False  # the output itself is on the CPU, not the selected GPU
    named = {op.removeprefix("_Mkl") for op in placement.host_ops}
    assert named >= {"Einsum", "Mul"}
    assert not named & {"Shape", "StridedSlice"}  # int32 shape arithmetic lives in host memory on any GPU
    assert not_ranked_reason({"status": "ok", "placement_check": "partial: x; on the host CPU: Einsum×1"}).startswith("partly on the host CPU")


def test_on_cpu_nothing_counts_as_a_host_fallback():
    adapter = tf_adapter.TensorFlowAdapter(device="cpu")
    a = adapter.asarray(np.ones((4, 4)), "fp32")
    fn = adapter._graph(lambda a: tf.linalg.matmul(a, a))
    with adapter.observing_placement():
        out = fn(a)
    assert adapter.placement(out).summary == "ok: outputs on device:CPU:0, selected CPU"


@pytest.mark.parametrize("workload", ["train_step", "lora"])  # generate pins its per-call token inputs already, so it raised before too
def test_an_eager_step_runs_on_the_selected_device_so_a_missing_kernel_is_unsupported(workload):
    """Finding 4 for eager rows: an eager op without an explicit device goes wherever it has a
    kernel, and TF records that in the run metadata only the first time the kernel is created in
    a worker (metal-check-2026-12-03.md §2 item 4, on TF 2.21), so a later eager case's Einsum ran
    on the host of a "GPU" row unseen. Here the step is built on this machine's CPU, then the
    adapter selects "GPU:0", for which this TensorFlow registers no kernel at all, as
    tensorflow-metal registers none for Einsum. The old eager step ran on the CPU and returned a
    loss; now its first op raises TF's own "Could not satisfy device specification ...
    enable_soft_placement=0" (EagerContext::SelectDevice) and the row is unsupported."""
    from workloads import WORKLOADS

    spec = WORKLOADS[workload]
    params = spec.cases("quick")[0]
    inputs = spec.make_inputs(params, np.random.default_rng(0))
    adapter = tf_adapter.TensorFlowAdapter(device="cpu")  # soft placement off, as on every backend
    adapter.mode = "eager"
    prepared = adapter.prepare(workload, params, "fp32", inputs)
    adapter.backend, adapter.device = "metal", "/GPU:0"
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        prepared.call()
    why = adapter.unsupported_reason(raised.value)
    assert why.startswith("TensorFlow on metal: Could not satisfy device specification '/job:localhost/replica:0/task:0/device:GPU:0'")
    assert "enable_soft_placement=0" in why
