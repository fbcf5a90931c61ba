"""Re-run both reliability audits (../shared/research/reliability-audit-2026-11-29.md and
reliability-audit-2026-12-03.md) and print one verdict table: the 122 cases of the first
and the 63 of the second, 185 in all, each judged against the CLI's contract and the
good outcome the audit tables state; then the count of good and defect cases, and for each
defect of the second audit (D17–D41) whether every case that showed it is good now.

    sudo python scripts/reliability_audit.py [--only A,B,N or A7,N54] [--scratch DIR] [--keep]
    python scripts/reliability_audit.py --list      # the 185 cases and their expectations, run nothing

Every case runs `bench ...` from a scratch folder outside the checkout (runs are tiny:
`-f torch`, `--budget 0.1`-`0.3`). The cases live in scripts/audit_cases_first.py and
scripts/audit_cases_second.py, the machinery in scripts/audit_kit.py. Cases that need
root (tmpfs mounts, `unshare --pid`) are `n/a` without it. docs/reliability-audit.md says
how to read the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audit_cases_first as first  # noqa: E402
import audit_cases_second as second  # noqa: E402
from audit_kit import Audit, Case  # noqa: E402

AUDITS = (("2026-11-29", first), ("2026-12-03", second))
ALL_CASES: dict[str, Case] = {c.id: c for _, module in AUDITS for c in module.CASES}
SECOND_AUDIT_DEFECTS = [f"D{n}" for n in range(17, 42)]


def list_cases() -> None:
    print("| # | audit | defect then | good outcome |\n|---|---|---|---|")
    for name, module in AUDITS:
        for c in module.CASES:
            print(f"| {c.id} | {name} | {', '.join(c.defects + c.was) or '—'} | {c.expected} |")


def summarise(audit: Audit) -> None:
    verdicts = {case: verdict for case, _, verdict in audit.rows}
    known = {c: v for c, v in verdicts.items() if c in ALL_CASES}
    extra = {c: v for c, v in verdicts.items() if c not in ALL_CASES}
    for name, module in AUDITS:
        ran = [known[c.id] for c in module.CASES if c.id in known]
        counts = {v: ran.count(v) for v in ("good", "defect", "n/a")}
        print(f"audit {name}: {len(ran)} of {len(module.CASES)} cases run: "
              + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    total = list(known.values())
    print(f"all: {len(total)} cases: {total.count('good')} good, {total.count('defect')} defect, {total.count('n/a')} n/a")
    if extra:
        print("extra checks: " + ", ".join(f"{c} {v}" for c, v in extra.items()))
    print("\n| defect | cases | now |\n|---|---|---|")
    for d in SECOND_AUDIT_DEFECTS:
        cases = [c.id for c in ALL_CASES.values() if d in c.defects]
        ran = [c for c in cases if c in known]
        if not ran:
            state = "not run"
        elif any(known[c] == "defect" for c in ran):
            state = "OPEN (" + ", ".join(c for c in ran if known[c] == "defect") + ")"
        elif all(known[c] == "n/a" for c in ran):
            state = "n/a"
        else:
            state = "fixed"
        print(f"| {d} | {', '.join(cases)} | {state} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scratch", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--only", default="", help="comma-separated sections (A,B,C,S,E of the first audit; N, or "
                    "N1-N20 style groups of the second: see --list) (default all)")
    ap.add_argument("--list", action="store_true", help="print the cases and their expected outcomes; run nothing")
    ap.add_argument("--jobs", type=int, default=1, help="sections run at once, each in a process and scratch folder "
                    "of its own (default 1; most cases wait on time-outs, signals and worker starts)")
    ap.add_argument("--rows", type=Path, default=None, help=argparse.SUPPRESS)  # a --jobs child's verdicts, as JSON
    args = ap.parse_args()
    if args.list:
        list_cases()
        return 0
    sections = {**first.SECTIONS, **second.SECTIONS}
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(sections)
    unknown = [s for s in chosen if s not in sections]
    if unknown:
        ap.error(f"unknown section {unknown[0]!r} (choose from: {', '.join(sections)})")
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="bench-audit-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    audit = Audit(scratch)
    audit.cases = ALL_CASES
    started = time.monotonic()
    if args.jobs > 1 and len(chosen) > 1:
        audit.rows = run_in_parallel(chosen, args.jobs, scratch)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        print()
        summarise(audit)
        print(f"\nwall time: {time.monotonic() - started:.0f} s")
        return 0
    print(f"scratch: {scratch}\n\n| # | defect then | outcome | verdict |\n|---|---|---|---|", flush=True)
    try:
        audit.real_results()
        for key in chosen:
            try:
                sections[key](audit)
            except Exception as exc:  # noqa: BLE001 — one broken section must not cost the others' verdicts
                audit.record(f"{key}!", f"section {key} stopped: {type(exc).__name__}: {exc}", False)
    finally:
        audit.unmount_all()
        audit.stop_all()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.rows:
        args.rows.write_text(json.dumps(audit.rows))
    print()
    summarise(audit)
    print(f"\nwall time: {time.monotonic() - started:.0f} s")
    return 0


def run_in_parallel(sections: list[str], jobs: int, scratch: Path) -> list[tuple[str, str, str]]:
    """Each section in a child process of this script with a scratch folder of its own;
    their tables are printed as each finishes, their verdicts merged in section order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(section: str) -> list[tuple[str, str, str]]:
        rows = scratch / f"{section}.rows.json"
        done = subprocess.run([sys.executable, __file__, "--only", section, "--scratch", str(scratch / section),
                               "--rows", str(rows)], capture_output=True, text=True)
        table = [ln for ln in done.stdout.splitlines()
                 if ln.startswith("| ") and (ln.split("|")[1].strip() in ALL_CASES or "!" in ln.split("|")[1])]
        print(f"\n### section {section} (exit {done.returncode})\n" + "\n".join(table), flush=True)
        if not rows.exists():
            tail = " ".join((done.stderr or done.stdout).split())[-200:]
            return [(f"{section}!", f"section {section} did not finish: {tail}", "defect")]
        return [tuple(r) for r in json.loads(rows.read_text())]

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, sections))
    return [row for rows in results for row in rows]


if __name__ == "__main__":
    sys.exit(main())
