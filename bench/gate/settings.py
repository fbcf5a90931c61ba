"""Run settings that change timings but are not part of a case's identity: `--threads`
and `--cpus`. A baseline made with one thread and a candidate with two were judged as a
speed change without a word; the comparison now says when the two sides ran differently,
so a reader knows the verdict compares settings as well as code.

They are not match keys: a framework's own default thread count differs between
machines and releases, and a gate that refused every such pair would judge nothing.
"""

from __future__ import annotations

import pandas as pd

SETTINGS = (("threads", "threads"), ("cpus", "CPUs bound (--cpus)"))


def _values(df: pd.DataFrame, column: str) -> set[str]:
    if column not in df:
        return set()
    ok = df[df["status"] == "ok"] if "status" in df else df
    return {"unbound" if pd.isna(v) else str(v) for v in ok[column]} if column == "cpus" else \
        {str(int(v)) for v in ok[column] if not pd.isna(v)}


def setting_notes(baseline: pd.DataFrame, candidate: pd.DataFrame) -> list[str]:
    """One line per setting whose values differ between the sides (baseline rows of machines
    the candidate did not run on are left out, as the comparison leaves them out)."""
    if "machine" in baseline and "machine" in candidate:
        baseline = baseline[baseline["machine"].isin(set(candidate["machine"]))]
    notes = []
    for column, name in SETTINGS:
        base, cand = _values(baseline, column), _values(candidate, column)
        if base and cand and base != cand:
            notes.append(f"not like with like: the baseline ran with {name} {', '.join(sorted(base))}, the candidate "
                         f"with {', '.join(sorted(cand))}; part of any change may be the setting, not the code")
    return notes
