"""The barrier-validity check (bench.selfcheck) against a barrier that skips the device's
synchronisation, on a real asynchronous device: torch on CUDA (`torch.cuda.synchronize`
replaced by nothing, the bug published MPS/CUDA tables had). Prints one table and writes
JSON to the folder given (default: stdout only).

    python scripts/barrier_check_demo.py [OUT_DIR]

For each barrier (real, skipped): the check's verdict, then a 64x64x64 fp32 matmul case run
through the worker's `run_case` (the row the suite would publish), and what the broken
barrier's timing of that tiny op would have looked like to the datasheet-peak bound alone.
On a CPU-only machine the device is the CPU: torch's CPU calls block, so a skipped barrier
still waits there and the check rightly calls it valid (tests/test_selfcheck.py shows the
asynchronous CPU case with a fake queue).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from bench import measure, selfcheck
from bench.frameworks.torch.adapter import TorchAdapter
from bench.machine import machine_info
from bench.roofline import plausibility
from bench.plan import CaseMessage  # noqa: E402
from bench.worker import run_case

TINY = {"m": 64, "n": 64, "k": 64}


class SkippedSyncAdapter(TorchAdapter):
    """torch with a barrier that returns at once."""

    def barrier(self, out):
        return None


def main(out_dir: str | None = None) -> int:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = []
    for adapter in (TorchAdapter(device=device), SkippedSyncAdapter(device=device)):
        check = selfcheck.check_barrier(adapter)
        row = run_case(adapter, CaseMessage.from_json({"workload": "matmul", "params": TINY, "dtype": "fp32"}))
        a = adapter.asarray(torch.ones(64, 64).numpy(), "fp32")
        call = lambda: torch.matmul(a, a)  # noqa: E731
        t = measure.time_latency(call, adapter.barrier, measure.warm_up(call, adapter.barrier, measure.Protocol()), measure.Protocol())
        per_call = t.summary.median
        bound = plausibility({"status": "ok", "backend": device, "device_name": adapter.device_name(),
                              "cpu_count": machine_info()["cpu_count"], "dtype": "fp32",
                              "tflops": 2 * 64**3 / per_call / 1e12, "gbps": 3 * 64 * 64 * 4 / per_call / 1e9})
        results.append({
            "barrier": type(adapter).__name__, "device": adapter.device_name(), "check": check.summary,
            "check_cost_s": check.cost_s, "row_status": row["status"], "row_reason": row.get("reason", ""),
            "row_median_s": row.get("median_s"), "tiny_op_latency_s": per_call, "peak_bound_plausible": bound["plausible"],
        })
    for r in results:
        print(f"{r['barrier']:>20} on {r['device']}: {r['check']}")
        print(f"{'':>20} 64^3 fp32 matmul row: status={r['row_status']} median={r['row_median_s']} reason={r['row_reason'][:90]}")
        print(f"{'':>20} that op timed through this barrier: {r['tiny_op_latency_s'] * 1e6:.1f} us/call; "
              f"datasheet-peak bound says plausible={r['peak_bound_plausible']}")
    if out_dir:
        Path(out_dir, "barrier_check_demo.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
