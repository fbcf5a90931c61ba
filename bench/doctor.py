"""`bench doctor`: what a Mac user runs first, and pastes into an issue.

Per framework and backend: found or not and why, the plugin and versions, the device,
whether the barrier is valid and the output lands on the selected device (bench.selfcheck,
the same checks every benchmark row carries), bf16 native or emulated, whether a
TF32-class fp32 mode exists, and whether the peak-memory counter works. One Markdown table
(it renders in a GitHub issue and reads as plain text), printed literally: file and
framework text is never interpreted as markup.

Each framework and backend is probed in its own process with that framework's interpreter
(`--python FW=PATH`, as `bench run`), because frameworks must not share a process and
some cannot switch backends once started (TensorFlow hides the GPU for a CPU run).

Exit status: 0 every framework can use the machine's accelerator (`--device`, default: Metal
on Apple Silicon, else CUDA where any framework finds it, else CPU) with valid checks; 1
degraded (some can, or a check failed); 2 nothing usable (no framework can).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from bench.frameworks.base import BACKENDS, DEVICE_CHOICES
from bench.textsafe import markdown_cell

EXIT_USABLE, EXIT_DEGRADED, EXIT_NOTHING = 0, 1, 2
COLUMNS = ("framework", "backend", "found", "plugin / versions", "device", "barrier", "placement", "bf16", "TF32-class",
           "peak memory")


# -- inside the probe process ------------------------------------------------------------
def bf16_support(backend: str, device_name: str) -> str:
    """Native or emulated bf16 on this device. Apple M1/M2 GPUs have no bf16 arithmetic and
    emulate it (shared/HOUSE.md traps; pytorch#139390 notes; MLX bf16 slower than fp16 on M2
    Ultra); M3 and newer run it natively. NVIDIA: compute capability 8.0+ (Ampere)."""
    if backend == "metal":
        m = re.search(r"\bM(\d+)\b", device_name) or re.search(r"\bM(\d+)\b", _cpu_name())
        if not m:
            return "unknown (chip not recognised)"
        return "emulated (Apple M1/M2 GPU)" if int(m.group(1)) <= 2 else f"native (Apple M{m.group(1)})"
    if backend == "cuda":
        cap = _nvidia_compute_capability()
        if cap is None:
            return "unknown (no nvidia-smi)"
        return f"native (sm_{cap.replace('.', '')})" if float(cap) >= 8.0 else f"emulated (sm_{cap.replace('.', '')})"
    if sys.platform == "darwin":
        feat = _run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"])
        return "native (FEAT_BF16)" if feat == "1" else "emulated (no FEAT_BF16)"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    for flag in ("amx_bf16", "avx512_bf16"):
        if re.search(rf"\b{flag}\b", flags):
            return f"native ({flag})"
    return "emulated (no avx512_bf16/amx_bf16)"


def _run(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _nvidia_compute_capability() -> str | None:
    out = _run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def _cpu_name() -> str:
    from bench.machine import cpu_name

    return cpu_name()


def _guarded(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as exc:  # the doctor reports, it never dies of what it diagnoses
        return f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _auto_rows(adapter: Any) -> list[dict[str, Any]]:
    """With device 'auto': a 'not found' row (with the framework's reason) for each backend
    it lacks, then the list it has; apart from probe so it reads as start, then check."""
    rows: list[dict[str, Any]] = []
    available = adapter.available_backends()
    for backend in BACKENDS:
        if backend not in available:
            rows.append({"backend": backend, "found": "no", "why": _guarded(lambda b=backend: adapter.missing_reason(b))})
    rows.append({"backend": "_available", "available": available})
    return rows


def probe(adapter_path: str, device: str) -> list[dict[str, Any]]:
    """Rows for one framework: the backend `device` selects, checked; with device 'auto',
    also a 'not found' row (with the framework's reason) for every backend it lacks."""
    from bench import selfcheck
    from bench.frameworks.base import BackendUnavailable

    module_name, _, class_name = adapter_path.partition(":")
    try:
        adapter_cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        return [{"backend": "—", "found": "not installed", "why": f"{type(exc).__name__}: {exc}"}]
    except Exception as exc:  # installed but broken (a TF plugin built for another TF: NotFoundError)
        return [{"backend": device, "found": "no", "why": f"failed to import: {type(exc).__name__}: {exc}"}]
    try:
        adapter = adapter_cls(device=device)
    except BackendUnavailable as exc:
        return [{"backend": device, "found": "no", "why": str(exc)}]
    except Exception as exc:
        return [{"backend": device, "found": "no", "why": f"failed to start: {type(exc).__name__}: {exc}"}]
    rows: list[dict[str, Any]] = _auto_rows(adapter) if device == "auto" else []
    versions = adapter.versions()
    row: dict[str, Any] = {
        "backend": adapter.backend,
        "found": "yes",
        "why": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "device": _guarded(adapter.device_name),
    }

    def placement() -> str:
        import numpy as np

        x = adapter.asarray(np.eye(64, dtype=np.float32), "fp32")
        out = adapter.matmul(x, x)
        adapter.barrier(out)
        verdict = adapter.placement(out)
        row["placement_ok"] = verdict.ok
        return verdict.summary

    row["placement"] = _guarded(placement)
    row["bf16"] = _guarded(lambda: bf16_support(adapter.backend, row["device"]))
    row["tf32"] = _guarded(lambda: "available" if (why := adapter.tf32_unsupported_reason()) is None else f"no: {why}")

    def peak() -> str:
        import numpy as np

        adapter.reset_peak_memory()
        x = adapter.asarray(np.ones((512, 512), dtype=np.float32), "fp32")
        adapter.barrier(adapter.matmul(x, x))
        got = adapter.peak_memory()
        return f"working: {got.device_bytes / 2**20:.1f} MiB" if got.device_bytes else f"null: {got.note}"

    # before the barrier check: JAX's peak cannot be reset (jax#8096), so the check's large
    # matrices would hide this small allocation
    row["peak_memory"] = _guarded(peak)
    barrier = selfcheck.check_barrier(adapter)
    row["barrier"] = barrier.summary
    row["barrier_valid"] = barrier.valid
    rows.append(row)
    return rows


# -- in the parent -----------------------------------------------------------------------
def run_probe(spec: Any, device: str, python: str, timeout_s: float = 300.0) -> list[dict[str, Any]]:
    """One probe process, started as the worker is (bench.child): a numpy.py in the working
    directory once ran inside it."""
    from bench import child

    env = child.environment(spec.worker_env("fp32", device))
    cmd = child.command(python, "bench.doctor", "--probe", spec.adapter, "--device", device)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return [{"backend": device, "found": "no", "why": f"probe did not answer within {timeout_s:g}s"}]
    except OSError as exc:
        return [{"backend": device, "found": "no", "why": f"cannot start {python}: {exc.strerror or exc}"}]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"backend": device, "found": "no", "why": f"probe died ({done.returncode}): {tail[:300]}"}]
    return json.loads(lines[-1])["rows"]


def diagnose(frameworks: Mapping[str, Any], pythons: Mapping[str, str], device: str = "auto") -> list[dict[str, Any]]:
    """Every framework's rows; the preferred backend and every other available one probed."""
    table = []
    for name, spec in frameworks.items():
        python = pythons.get(name, sys.executable)
        rows = run_probe(spec, "auto", python)
        available = next((r["available"] for r in rows if r.get("backend") == "_available"), [])
        rows = [r for r in rows if r.get("backend") != "_available"]
        probed = {r["backend"] for r in rows if r.get("found") == "yes"}
        for backend in available:
            if backend not in probed:
                rows += run_probe(spec, backend, python)
        order = {b: i for i, b in enumerate(BACKENDS)}
        for row in sorted(rows, key=lambda r: order.get(r.get("backend"), -1)):
            table.append({"framework": name, **row})
    return table


def target_backend(table: Sequence[Mapping[str, Any]], requested: str = "auto") -> str:
    """The accelerator this machine should be used with."""
    if requested != "auto":
        return requested
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "metal"
    if any(r.get("backend") == "cuda" and r.get("found") == "yes" for r in table):
        return "cuda"
    return "cpu"


def usable(row: Mapping[str, Any]) -> bool:
    """Found, barrier not invalid, and a placement probe that ran (`placement_ok` is set only
    when it returned; None there means the framework cannot tell, which is not a failure). A
    probe that raised leaves it unset: that backend is not shown to work."""
    return (row.get("found") == "yes" and row.get("barrier_valid") is not False
            and "placement_ok" in row and row["placement_ok"] is not False)


def verdict(table: Sequence[Mapping[str, Any]], target: str) -> tuple[int, str]:
    frameworks = list(dict.fromkeys(r["framework"] for r in table))
    good = [fw for fw in frameworks if any(r["framework"] == fw and r.get("backend") == target and usable(r) for r in table)]
    if frameworks and len(good) == len(frameworks):
        return EXIT_USABLE, f"all usable: every framework runs on {target} with a valid barrier and placement"
    if not good:
        return EXIT_NOTHING, f"nothing usable: no framework runs on {target} with valid checks"
    missing = [fw for fw in frameworks if fw not in good]
    return EXIT_DEGRADED, f"degraded: usable on {target}: {', '.join(good)}; not: {', '.join(missing)}"


def _cell(text: Any) -> str:
    """Inert Markdown on one line (bench.textsafe, as the gate's cells): a framework's error
    text once put a raw `</details>`, `<!--`, an `<img>` and a link into what users paste
    into an issue, and bidi overrides, NUL and ESC reached the terminal."""
    return markdown_cell("" if text is None else text, limit=400, emphasis=False).strip() or "—"


def render(table: Sequence[Mapping[str, Any]], header: Mapping[str, Any], status: str) -> str:
    lines = ["# bench doctor", ""]
    lines += [f"- {key}: {_cell(value)}" for key, value in header.items()]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in table:
        cells = (r["framework"], r.get("backend"), r.get("found"), r.get("why"), r.get("device"), r.get("barrier"),
                 r.get("placement"), r.get("bf16"), r.get("tf32"), r.get("peak_memory"))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", f"verdict: {status}"]
    return "\n".join(lines)


def machine_header() -> dict[str, Any]:
    from bench.machine import machine_info

    info = machine_info()
    header = {"os": info["os"], "chip": info["chip"], "python": info["python_version"], "metalbench": info["suite_version"]}
    if sys.platform == "darwin":
        header["macOS"] = platform.mac_ver()[0] or "unknown"
    return header


def add_parser(sub: Any, python_map: Any, choice: Any, framework_list: Any) -> None:
    """Registered by bench.cli with its argument types (bad input: one line, exit 2)."""
    d = sub.add_parser("doctor", help="what works here: per framework and backend, with self-checks (run it first)",
                       description="Probe every framework on every backend it finds: plugin and versions, barrier "
                       "validity, placement, bf16, TF32-class mode, peak-memory counter. Prints one Markdown table "
                       "to paste into an issue. Exit 0: all usable; 1: degraded; 2: nothing usable.")
    d.add_argument("--device", type=choice("device", DEVICE_CHOICES), default="auto",
                   help="the backend every framework should run on (default: metal on Apple Silicon, else cuda if found, else cpu)")
    d.add_argument("--python", type=python_map, action="append", default=[], metavar="FW=PATH",
                   help="interpreter for one framework (repeatable), as for 'bench run'")
    d.add_argument("-f", "--framework", type=framework_list, action="extend", metavar="NAMES", help="comma-separated; default all")


def cmd_doctor(args: argparse.Namespace, console: Any = None) -> int:
    from bench.catalog import FRAMEWORKS

    names = list(dict.fromkeys(args.framework or FRAMEWORKS))
    table = diagnose({n: FRAMEWORKS[n] for n in names}, dict(args.python))
    target = target_backend(table, args.device)
    code, status = verdict(table, target)
    print(render(table, machine_header(), status), flush=True)  # plain print: no markup interpretation
    return code


COMMANDS = {"doctor": cmd_doctor}


def main(argv: list[str] | None = None) -> int:
    """The probe entry point (`python -m bench.doctor --probe MODULE:CLASS --device D`)."""
    ap = argparse.ArgumentParser(prog="python -m bench.doctor")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # framework chatter goes to stderr; stdout carries one JSON line
    rows = probe(args.probe, args.device)
    channel.write(json.dumps({"rows": rows}, default=str) + "\n")
    channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
