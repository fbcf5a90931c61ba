"""Confirming the gate's alarms: the flagged cases again, in fresh processes, before going red.

A case's processes now and then settle into a slow state (on the 2-core VM about one process
in twenty ran ≥ 15% above its case's median), and such states come in episodes: the next
process is often slow too. A gate block of two consecutive runs can then be slow in both, and
no spread measured in a baseline made at another time can tell that from a regression. A
regression, though, stays: so when the gate finds `slower` cases, `make gate` runs just those
cases again in `--runs` more fresh processes (one `bench run --processes RUNS` per framework,
workload, dtype and mode, with exactly the flagged parameters), adds them to the gate's runs and judges
everything again with the same statistics. Red needs both looks, so a false alarm is rarer
than after the first; the confirming processes add power where a slowdown is real.
`scripts/gate_simulation.py --confirm 2` measures both on a pool of real runs. Like `bench.ab`
it sits above the gate (the gate only reads results; this runs cases, through `bench run`).

usage: python -m bench.confirm FIRST.json --out GATE_DIR [--runs 2] [-- bench run options]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from bench import child
from bench.argtypes import positive_int
from bench.catalog import format_params
from bench.gate.compare import SLOWER
from bench.inputs import read_regular_text


def confirm_runs(summary: dict[str, Any]) -> list[list[str]]:
    """`bench run` arguments that re-measure exactly the `slower` cases of a gate summary
    (its --json): one run per framework, workload, dtype and mode, one -p per flagged case."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for case in _slower_cases(summary):
        key = case["key"]
        groups.setdefault((key["framework"], key["workload"], key["dtype"], key.get("mode") or "eager"), []).append(
            format_params(json.loads(key["params"])))
    runs = []
    for (framework, workload, dtype, mode), params in groups.items():
        args = ["-f", framework, "-w", workload, "-d", dtype, "--mode", mode]
        for p in dict.fromkeys(params):
            args += ["-p", p]
        runs.append(args)
    return runs


def _slower_cases(summary: Any) -> list[dict[str, Any]]:
    """The `slower` cases of a summary, each checked for the fields a re-run needs; ValueError
    naming the first that is missing (a JSON list, a case without `key` or params that are
    not JSON once ended in a traceback)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("cases", []), list):
        raise ValueError("not a gate summary (expected the JSON object `bench compare --json` writes, with a cases list)")
    slower = [c for c in summary.get("cases", []) if isinstance(c, dict) and c.get("verdict") == SLOWER]
    for n, case in enumerate(slower, 1):
        key = case.get("key")
        if not isinstance(key, dict) or not all(isinstance(key.get(f), str) for f in ("framework", "workload", "dtype", "params")):
            raise ValueError(f"slower case {n} has no key with framework, workload, dtype and params")
        try:
            params = json.loads(key["params"])
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise ValueError(f"slower case {n}: params {key['params'][:40]!r} is not a JSON object")
    return slower


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.confirm", description=__doc__.splitlines()[0])
    ap.add_argument("summary", type=Path, help="the first comparison's --json")
    ap.add_argument("--out", type=Path, required=True, help="the gate's runs folder; the confirming runs go there")
    ap.add_argument("--runs", type=positive_int, default=2, help="fresh processes per flagged case (default 2)")
    argv = list(sys.argv[1:] if argv is None else argv)
    run_options = argv[argv.index("--") + 1:] if "--" in argv else []  # after --: options for every bench run
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        runs = confirm_runs(json.loads(read_regular_text(args.summary)))
    except (OSError, ValueError) as exc:
        print(f"confirm: cannot read {args.summary}: {exc}", file=sys.stderr)
        return 2
    bench = child.command(sys.executable, "bench")  # as the worker starts: no module from the working directory
    for g, run in enumerate(runs, 1):  # one run per group, its --runs processes fresh workers (bench.processes)
        cmd = [*bench, "run", "--suite", "quick", *run, *run_options, "--processes", str(args.runs),
               "--out", str(args.out), "--run-id", f"confirm-{g}"]
        print(f"confirm: {' '.join(run)} in {args.runs} fresh processes", flush=True)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, env=child.environment())
        if done.returncode != 0:  # a failing case is a row, not an exit code: this is a usage error
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
