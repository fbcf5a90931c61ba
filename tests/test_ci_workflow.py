"""Finding 7: GitHub-hosted macOS runners are VMs without Metal (actions/runner-images#9918),
so only a self-hosted Apple Silicon runner may measure Metal, and a hosted macOS job is a
CPU job that says so."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML: present in the dev environments this runs in

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "bench-gate.yml"


def _jobs():
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def _steps_text(job) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_hosted_macos_jobs_are_labelled_cpu_and_run_with_device_cpu():
    hosted_macos = 0
    for job in _jobs().values():
        for entry in job.get("strategy", {}).get("matrix", {}).get("include", []) or [{}]:
            runs_on = str(job["runs-on"]).replace("${{ matrix.os }}", entry.get("os", ""))
            if runs_on.startswith("macos-"):
                hosted_macos += 1
                assert entry["name"].startswith("cpu") and "no Metal" in entry["name"]
                assert entry["device"] == "cpu" and '--device ${{ matrix.device }}' in _steps_text(job)
    assert hosted_macos >= 1


def test_metal_is_measured_only_on_a_self_hosted_apple_silicon_runner():
    metal = [job for job in _jobs().values() if "--device metal" in _steps_text(job)]
    assert len(metal) == 1
    job = metal[0]
    assert job["runs-on"] == ["self-hosted", "macOS", "ARM64"]
    assert "make doctor" in _steps_text(job)
    assert "head.repo.full_name == github.repository" in job["if"]  # no fork code on the Mac
    upload = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert "results/gate/" in upload["with"]["path"]
