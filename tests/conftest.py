from __future__ import annotations

from pathlib import Path

import pytest

from bench import measure
from bench.catalog import FrameworkSpec
from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig

FAKE = FrameworkSpec("fake", "tests.fake_framework:FakeAdapter", "numpy", "fake")

# The mode each framework's multi-op workloads (train_step, lora, generate) run in the quick
# suite on a CPU; the other mode is skipped there (a C++ build per compiled function for
# torch and MLX, every primitive compiled for eager JAX). TF runs both; its compiled is XLA.
QUICK_CPU_MODE = {"torch": "eager", "tensorflow": "compiled", "jax": "compiled", "mlx": "eager"}

# A small sampling budget: tests check behaviour, not speed.
QUICK_PROTOCOL = measure.Protocol(budget_s=0.05, min_samples=5, max_samples=20, warmup_s=0.0, min_sample_s=1e-4)


@pytest.fixture
def run_cases(tmp_path: Path):
    """Run cases through the real runner and worker processes; returns the rows."""

    def run(cases, frameworks=None, **config):
        from bench.catalog import FRAMEWORKS

        config.setdefault("protocol", QUICK_PROTOCOL)
        writer = ResultsWriter(tmp_path / "results" / "run.parquet")
        runner = Runner(RunConfig(**config), writer, "test-run", frameworks=frameworks or {**FRAMEWORKS, "fake": FAKE})
        return runner.run(cases), writer.path

    return run
