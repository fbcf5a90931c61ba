"""`bench show --efficiency`: joules per call and the per-watt figures, like with like.

One line per row that was measured (status ok), grouped as the speed table groups them
(bench.summary.COMPARABLE, run conditions included) and within one energy scope; ranked
by joules per call only among rows whose energy passed its self-check
(bench.summary.rank_efficiency). A row without energy says why in the footnotes: its
`energy_note` (no counter on this machine, `--energy off`, a source that failed) or its
flagged check.
"""

from __future__ import annotations

import pandas as pd
from bench.textsafe import markup as escape  # file text: no markup, no terminal escapes
from rich.table import Table

from bench.fmt import fmt_num, fmt_time
from bench.summary import NORMAL_CONDITIONS, describe_params, rank_efficiency

COLUMNS = (
    ("case", "left"), ("dtype", "left"), ("mode", "left"), ("framework", "left"), ("conditions", "left"),
    ("time/call", "right"), ("J/call", "right"), ("W work", "right"), ("W idle", "right"), ("W limit", "right"),
    ("TFLOP/s/W", "right"), ("tokens/J", "right"), ("J/step", "right"), ("scope", "left"), ("vs least", "right"),
)  # fmt: skip


def _plain(value: object) -> str:
    return "—" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def efficiency_table(df: pd.DataFrame, title: str) -> Table:
    """The efficiency view of one machine's rows (see the module docstring)."""
    ranked = rank_efficiency(df[df["status"] == "ok"])
    ranked = ranked.sort_values(["workload", "params", "dtype", "mode", "framework"], kind="stable")
    table = Table(title=title, header_style="bold", caption_justify="left")
    for name, justify in COLUMNS:
        table.add_column(name, justify=justify, no_wrap=True, max_width=40 if name == "case" else None)  # type: ignore[arg-type]
    notes: dict[str, int] = {}
    for _, r in ranked.iterrows():
        standing = "—"
        if r["not_efficient"]:
            standing = f"[{notes.setdefault(str(r['not_efficient']), len(notes) + 1)}]"
        elif pd.notna(r["energy_rank"]):
            standing = "least" if r["energy_rank"] == 1 else f"{r['vs_least_energy']:.2f}×"
        conditions = str(r["conditions"])
        table.add_row(  # file-supplied text escaped: a "[/]" in a value is text, not markup
            escape(f"{r['workload']} {describe_params(r['params'])}"), escape(str(r["dtype"])), escape(str(r.get("mode"))),
            escape(str(r["framework"])), escape(conditions) if conditions == NORMAL_CONDITIONS else f"[yellow]{escape(conditions)}[/]",
            fmt_time(r.get("median_s")), fmt_num(r.get("energy_j_per_call")), fmt_num(r.get("energy_power_w")),
            fmt_num(r.get("energy_idle_w")), fmt_num(r.get("energy_limit_w")), fmt_num(r.get("tflops_per_watt")),
            fmt_num(r.get("tokens_per_joule")), fmt_num(r.get("joules_per_step")),
            escape(_plain(r.get("energy_scope"))), standing,
        )
    if notes:
        table.caption = "\n".join(f"\\[{n}] {escape(text[:200])}" for text, n in notes.items())
    return table
