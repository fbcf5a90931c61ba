"""Finding 7: GitHub-hosted macOS runners are VMs without Metal (actions/runner-images#9918),
so only a self-hosted Apple Silicon runner may measure Metal, and a hosted macOS job is a
CPU job that says so."""

from __future__ import annotations

from pathlib import Path

import yaml  # PyYAML: in the dev extra, so this guard runs wherever the tests do (it was skipped)

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
                assert entry["device"] == "cpu" and "make gate GATE_DIR=results/gate DEVICE=${{ matrix.device }}" in _steps_text(job)
    assert hosted_macos >= 1


def test_metal_is_measured_only_on_a_self_hosted_apple_silicon_runner():
    metal = [job for job in _jobs().values() if "DEVICE=metal" in _steps_text(job)]
    assert len(metal) == 1
    job = metal[0]
    assert job["runs-on"] == ["self-hosted", "macOS", "ARM64"]
    assert "make doctor" in _steps_text(job)
    assert "head.repo.full_name == github.repository" in job["if"]  # no fork code on the Mac
    uploads = [step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/upload-artifact")]
    assert any("results/gate/" in step["with"]["path"] for step in uploads)


def test_day_one_is_said_in_the_workflow_and_by_the_failing_gate_job():
    """Without a committed baseline every gate job exits 2: the workflow can make the first one
    (a manual run with `baseline`), and the gate step names that when the comparison finds none."""
    text = WORKFLOW.read_text()
    assert "Day one" in text.split("name: bench-gate", 1)[0]  # the header says what to do
    workflow = yaml.safe_load(text)
    inputs = workflow[True]["workflow_dispatch"]["inputs"]  # PyYAML reads the key `on` as True
    assert inputs["baseline"]["type"] == "boolean"
    for job in _jobs().values():
        steps = {step.get("name"): step for step in job["steps"]}
        assert "make baseline" in steps["baseline"]["run"] and "inputs.baseline" in steps["baseline"]["if"]
        assert steps["keep the baseline"]["with"]["path"] == "results/baselines/"
        gate = steps["gate"]
        assert "Make one on that machine with 'make baseline'" in gate["run"]  # bench compare's words (bench/gate/compare.py)
        assert "::error" in gate["run"] and "'baseline' ticked" in gate["env"]["DAY_ONE"]


def test_the_message_the_gate_step_looks_for_is_what_bench_compare_says():
    from pathlib import Path as _P

    compare = (_P(__file__).resolve().parent.parent / "bench" / "gate" / "compare.py").read_text()
    assert "Make one on that machine with 'make baseline'" in compare
