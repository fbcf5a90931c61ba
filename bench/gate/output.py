"""The gate's answer, written for people: a rich table, Markdown for a CI job summary, JSON.

Formatting only; every number is decided in `bench.gate.compare`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

from rich.table import Table

from bench import safe_write
from bench.fmt import json_finite
from bench.textsafe import markdown_cell, markup as escape
from bench.gate.compare import FAILING_VERDICTS, CaseResult, Comparison

STYLE = {"now failing": "bold red", "slower": "bold red", "precision changed": "bold red", "insufficient": "red",
         "changed definition": "yellow", "missing": "yellow", "new": "cyan", "now correct": "green",
         "faster": "green", "same": "", "not measured": "dim"}
COLUMNS = ("verdict", "case", "baseline", "candidate", "ratio", "95% CI", "p (Bonf.)", "processes", "spread", "bar",
           "detects", "note")
RIGHT = frozenset({"baseline", "candidate", "ratio", "p (Bonf.)", "processes", "spread", "bar", "detects"})


def _time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _pct(fraction: float, sign: str) -> str:
    return f"{sign}{fraction:.1%}" if math.isfinite(fraction) else "—"


def _cells(c: CaseResult) -> list[str]:
    fin = math.isfinite(c.ratio)
    return [
        c.verdict, c.label, _time(c.baseline_s), _time(c.candidate_s),
        f"{c.ratio:.3f}×" if fin else "—",
        f"{c.ci_low:.3f}–{c.ci_high:.3f}" if fin else "—",
        f"{c.p_adjusted:.2g}" if math.isfinite(c.p_adjusted) else "—",
        f"{c.baseline_runs}/{c.candidate_runs}" if c.baseline_runs or c.candidate_runs else "—",
        _pct(c.spread, "±"), _pct(c.bar, "+"), _pct(c.detectable, "≥ "),
        c.detail,
    ]


def rich_table(result: Comparison) -> Table:
    table = Table(title=escape(f"{result.baseline} → {result.candidate}"), header_style="bold", caption=escape(result.headline))
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in RIGHT else "left")
    for c in result.cases:
        style = STYLE.get(c.verdict, "")
        cells = [escape(cell) for cell in _cells(c)]  # labels and notes come from files: text, not markup
        cells[0] = f"[{style}]{cells[0]}[/]" if style else cells[0]
        table.add_row(*cells)
    return table


md_text = markdown_cell  # the gate's cells, doctor's and any other Markdown: one escaping (bench.textsafe)


def markdown(result: Comparison) -> str:
    """A summary for $GITHUB_STEP_SUMMARY: headline, the failing cases first, then the rest
    folded away so a long suite does not bury the answer."""
    icon = {0: "✅", 1: "❌", 2: "⚠️"}[result.exit_code]
    lines = [f"## {icon} metalbench regression gate", "", f"**{result.headline}**", "",
             f"baseline {md_text(result.baseline, 500)} → candidate {md_text(result.candidate, 500)}, "
             f"metric `{result.config.metric}`, per-process figure `{result.config.figure}`", "",
             f"Sensitivity: {md_text(result.sensitivity, 500)} (at {result.config.power:.0%} power).", ""]
    lines += [f"> ⚠️ {md_text(note, 500)}" for note in result.notes] + ([""] if result.notes else [])

    def table(cases: list[CaseResult]) -> list[str]:
        rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        rows += ["| " + " | ".join(md_text(cell) for cell in _cells(c)) + " |" for c in cases]
        return rows

    failing = [c for c in result.cases if c.verdict in FAILING_VERDICTS or c.verdict == "insufficient"]
    if failing:
        lines += table(failing) + [""]
    rest = [c for c in result.cases if c not in failing]
    if rest:
        lines += ["<details><summary>all other cases</summary>", ""] + table(rest) + ["", "</details>", ""]
    lines.append("Each process (a fresh run) gives one figure per case (its fastest or median sample). A case is `slower` when the shift between "
                 "the sides' per-process figures is above its bar: what a t test with Bonferroni's correction over "
                 "all cases calls significant, from the baseline's between-process spread (or the floor, if higher). "
                 "`detects` is the slowdown the case catches "
                 f"{result.config.power:.0%} of the time; `processes` is baseline/candidate.")
    return "\n".join(lines) + "\n"


def write_json(result: Comparison, path: Path, inputs: Iterable[Path | str] = ()) -> None:
    """Every case as strict JSON (no NaN/Infinity), never over an input or a file bench did not write."""
    text = json.dumps(json_finite(result.to_dict()), indent=2, default=str, allow_nan=False)
    safe_write.write_text(path, text, inputs)


def write_markdown(result: Comparison, path: Path, inputs: Iterable[Path | str] = ()) -> None:
    safe_write.write_text(path, markdown(result), inputs)
