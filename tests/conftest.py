from __future__ import annotations

from pathlib import Path

import pytest

from bench.results import ResultsWriter
from bench.runner import Runner, RunConfig
from tests.helpers import FAKE, QUICK_PROTOCOL


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
