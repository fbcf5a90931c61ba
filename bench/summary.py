"""Like-with-like tables: who is fastest, only among rows that measured the same thing.

Two rows are comparable when they ran the same workload, parameters and dtype, on the
same machine, with the same timing kind and execution mode (eager or compiled), under the
same run conditions (bench.conditions: a row measured under thermal pressure, in Low
Power Mode or on battery ranks only against rows measured so) — and each really computed
at the precision its dtype promises (correct, precision_matches). Anything else is shown
but never ranked, with the reason in `not_ranked`. Efficiency (joules per call) ranks the
same groups, within one energy scope, among rows whose energy passed its self-check.
"""

from __future__ import annotations

import json
import math
from typing import Sequence

import pandas as pd

COMPARABLE = ("machine", "workload", "params", "dtype", "timing", "mode", "conditions")
NORMAL_CONDITIONS = "normal"  # bench.conditions; rows written before conditions were recorded read as this


def with_conditions(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with `conditions` filled: null (a row from before they were recorded, or made by
    hand) reads as normal, so only a row that says what was off is set apart."""
    out = df.copy()
    if "conditions" not in out:
        out["conditions"] = NORMAL_CONDITIONS
    # an all-null column reads back as float64: make it text before filling it with text
    out["conditions"] = out["conditions"].astype(object).fillna(NORMAL_CONDITIONS).replace("", NORMAL_CONDITIONS)
    return out


def _is_false(value: object) -> bool:
    """False, numpy False or 0 — but not null (null means "not judged", e.g. a training loss)."""
    return value is not None and not pd.isna(value) and not bool(value)


def not_ranked_reason(row: pd.Series) -> str:
    if row.get("status") != "ok":
        return str(row.get("status"))
    if row.get("timing") == "reference":
        return "reference: a tool users run instead (bench run --reference), never ranked"
    if str(row.get("placement_check") or "").startswith("partial"):
        return "partly on the host CPU (placement_check)"
    if _is_false(row.get("plausible")):
        return "implausible: faster than the device's peak"
    if _is_false(row.get("precision_matches")):
        return f"measured {row.get('effective_precision')}, not {row.get('dtype')}"
    if not bool(row.get("correct")):
        return "output outside tolerance"
    if not (isinstance(row.get("median_s"), float) and math.isfinite(row["median_s"])):
        return "no timing"
    if row["median_s"] <= 0:  # a time that cannot be: never "best" (a file once ranked −1 s first)
        return "impossible timing"
    return ""


def rank(df: pd.DataFrame, by: Sequence[str] = COMPARABLE) -> pd.DataFrame:
    """Adds `not_ranked`, `rank` (1 = fastest) and `vs_best` (time / best time) per group of
    rows alike in `by` (the report adds the run: a framework never ranked against its own runs)."""
    out = with_conditions(df)
    if "mode" not in out:  # rows built before the mode existed (or by hand) were eager
        out["mode"] = "eager"
    out["not_ranked"] = out.apply(not_ranked_reason, axis=1) if len(out) else pd.Series(dtype=str)
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["vs_best"] = float("nan")
    rankable = out["not_ranked"] == ""
    if rankable.any():
        groups = out[rankable].groupby(list(by), dropna=False)["median_s"]
        out.loc[rankable, "rank"] = groups.rank(method="min").astype("Int64")
        out.loc[rankable, "vs_best"] = out.loc[rankable, "median_s"] / groups.transform("min")
    out["tie"] = _ties(out, rankable, by)
    return out


def _ties(ranked: pd.DataFrame, rankable: pd.Series, by: Sequence[str] = COMPARABLE) -> pd.Series:
    """True where a ranked row's between-process interval (bench.processes.headline's
    process_low_s/process_high_s) overlaps the best row's of its group: the two are "≈",
    never a winner and a loser. The best row is a tie when any other row overlaps it. Rows
    without an interval (one process, or rows never summarised over processes) are never
    ties: the table says instead how many processes stand behind them."""
    from bench.stats import intervals_overlap

    tie = pd.Series(False, index=ranked.index)
    if "process_low_s" not in ranked or not rankable.any():
        return tie
    for _, group in ranked[rankable].groupby(list(by), dropna=False):
        if len(group) < 2:
            continue
        best = group.loc[group["median_s"].idxmin()]
        for index, row in group.iterrows():
            if index == best.name:
                continue
            if intervals_overlap(row["process_low_s"], row["process_high_s"], best["process_low_s"], best["process_high_s"]):
                tie[index] = tie[best.name] = True
    return tie


def best_available(df: pd.DataFrame) -> pd.DataFrame:
    """Each framework at its best: per case (COMPARABLE without the mode) and framework, its
    fastest rankable row in any mode, the mode named; `vs_best` compares these across
    frameworks. A view beside the ranking, never a ranking of one mode against another:
    it answers "what does a user of this framework get", and says which mode gives it."""
    ranked = rank(df)
    ok = ranked[ranked["not_ranked"] == ""]
    if ok.empty:
        return ok.assign(best_of_modes="")
    case = [c for c in COMPARABLE if c != "mode"]
    modes = ok.groupby([*case, "framework"], dropna=False)["mode"].agg(lambda m: ",".join(sorted(set(m))))
    best = ok.loc[ok.groupby([*case, "framework"], dropna=False)["median_s"].idxmin()].copy()
    best["best_of_modes"] = [modes.loc[tuple(r)] for r in best[[*case, "framework"]].itertuples(index=False)]
    best["vs_best"] = best["median_s"] / best.groupby(case, dropna=False)["median_s"].transform("min")
    return best.reset_index(drop=True)


def describe_params(params: str) -> str:
    try:
        p = json.loads(params)
    except (TypeError, ValueError):
        return str(params)
    if {"m", "n", "k", "bits"} <= p.keys():
        return f"{p['m']}×{p['k']}·{p['k']}×{p['n']} int{p['bits']} {p.get('scheme', '')} g{p.get('group', '')}".strip()
    if {"m", "n", "k"} <= p.keys():
        return f"{p['m']}×{p['k']}·{p['k']}×{p['n']}"
    if {"layers", "d_model", "seq", "batch"} <= p.keys():
        lora = f" r{p['lora_rank']}" if "lora_rank" in p else ""
        return f"L{p['layers']} d{p['d_model']} S{p['seq']} B{p['batch']}{lora}"
    if {"batch", "heads", "seq", "head_dim"} <= p.keys():
        causal = " causal" if p.get("causal") else ""
        return f"B{p['batch']} H{p['heads']} S{p['seq']} D{p['head_dim']}{causal}"
    text = " ".join(f"{k}={v}" for k, v in p.items())
    return text if len(text) <= 48 else text[:47] + "…"


def not_efficient_reason(row: pd.Series) -> str:
    """Why a row has no place in an efficiency ranking ("" when it has one)."""
    if row.get("not_ranked"):
        return str(row["not_ranked"])
    joules = row.get("energy_j_per_call")
    if joules is None or pd.isna(joules):
        return f"no energy: {row.get('energy_note') or 'not measured'}"
    if not _is_true(row.get("energy_valid")):
        return f"energy {row.get('energy_check') or 'not checked'}"
    if not joules > 0:
        return "impossible energy"
    return ""


def _is_true(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def rank_efficiency(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `not_efficient`, `energy_rank` (1 = fewest joules per call) and `vs_least_energy`
    within each comparable group and energy scope (a GPU board's joules are not a SoC's)."""
    out = rank(df)
    for column in ("energy_j_per_call", "energy_valid", "energy_scope"):
        if column not in out:
            out[column] = None
    out["not_efficient"] = out.apply(not_efficient_reason, axis=1) if len(out) else pd.Series(dtype=str)
    out["energy_rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["vs_least_energy"] = float("nan")
    ok = out["not_efficient"] == ""
    if ok.any():
        groups = out[ok].groupby([*COMPARABLE, "energy_scope"], dropna=False)["energy_j_per_call"]
        out.loc[ok, "energy_rank"] = groups.rank(method="min").astype("Int64")
        out.loc[ok, "vs_least_energy"] = out.loc[ok, "energy_j_per_call"] / groups.transform("min")
    return out
