"""The report's charts, each a function from prepared rows to an inline SVG.

Every chart draws only rows the like-with-like rule lets be compared (`data.comparable`);
the rows it leaves out are listed under it by `build`, with the reason. Facets are the
same everywhere — one row of panels per machine, one column per dtype — so the machine
is a dimension of every chart and dtypes sit side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from bench.report.data import case_order
from bench.report.peaks import T, Roofs, roofs_for
from bench.report.style import new_figure, to_svg
from bench.summary import COMPARABLE

MIB = 2**20
MICRO = 1e-6
DTYPE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LOG_SPAN = 20.0  # switch an axis to log scale when its values span more than this factor


@dataclass
class Chart:
    """One rendered figure and what a reader needs to read it."""

    id: str
    kind: str  # throughput, speedup, scaling, latency, memory, roofline, loss
    title: str
    svg: str
    caption: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Series:
    """One set of bars: a label, a look, and a value (with optional interval) per category."""

    label: str
    colour: str
    values: dict[str, float]
    low: dict[str, float] | None = None
    high: dict[str, float] | None = None
    hatch: str | None = None
    alpha: float = 1.0


def wants_log(values: Sequence[float] | np.ndarray) -> bool:
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and math.isfinite(x) and x > 0], dtype=float)
    return len(v) > 1 and v.max() / v.min() > LOG_SPAN


def _grid(n_rows: int, n_cols: int, panel_w: float, panel_h: float = 2.9) -> tuple[Figure, np.ndarray]:
    fig = new_figure(n_cols * panel_w, n_rows * panel_h + 0.6)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def _panel_width(n_categories: int, n_series: int) -> float:
    return 1.2 + 0.22 * max(1, n_categories) * max(1, n_series) + 0.35 * max(1, n_categories)


def _legend(fig: Figure, handles: list) -> None:
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 6))


def _framework_handles(frameworks: Sequence[str], colours: dict[str, str]) -> list[Patch]:
    return [Patch(facecolor=colours[f], label=f) for f in frameworks]


def draw_bars(ax: Axes, categories: list[str], series: list[Series], log: bool, bottom: float = 0.0) -> None:
    """Grouped bars: one group per category, one bar per series, error bars where given.

    Bars grow from `bottom`: 0 for amounts, 1 for ratios (so a speed-up below 1 points down).
    On a log axis with bottom 0 the axis starts a whole decade below the smallest bar, or
    the smallest bar would be a sliver and read as "almost nothing".
    """
    width = 0.8 / max(1, len(series))
    smallest = math.inf
    x = np.arange(len(categories))
    for i, s in enumerate(series):
        pos = x - 0.4 + width * (i + 0.5)
        vals = np.array([s.values.get(c, np.nan) for c in categories], dtype=float)
        keep = np.isfinite(vals) & ((vals > 0) if log else True)
        if not keep.any():
            continue
        err = None
        if s.low is not None and s.high is not None:
            lo = np.array([s.low.get(c, np.nan) for c in categories], dtype=float)
            hi = np.array([s.high.get(c, np.nan) for c in categories], dtype=float)
            err = np.nan_to_num(np.clip(np.vstack([vals - lo, hi - vals])[:, keep], 0, None))
        smallest = min(smallest, float(vals[keep].min()))
        ax.bar(pos[keep], vals[keep] - bottom, width * 0.92, bottom=bottom, color=s.colour, hatch=s.hatch, alpha=s.alpha,
               edgecolor="white" if not s.hatch else s.colour, linewidth=0.6, label=s.label,
               yerr=err, error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "#333"})
    long_labels = max(map(len, categories), default=0) > 12
    ax.set_xticks(x, categories, rotation=(35 if len(categories) > 10 else 18) if long_labels else 0,
                  ha="right" if long_labels else "center", fontsize=7.5 if len(categories) > 10 else None)
    ax.set_xlim(-0.6, len(categories) - 0.4)
    if log:
        log_axis(ax.yaxis)
        if bottom == 0 and math.isfinite(smallest):
            ax.set_ylim(bottom=10 ** math.floor(math.log10(smallest)))
    ax.grid(axis="x", visible=False)


def log_axis(axis: Axis, base: float = 10) -> None:
    """Log scale in plain numbers (0.01, 2, 500, 20M) and without minor ticks.

    Ticks step 1-2-5 over short spans and by whole decades over long ones, so labels never
    overlap. matplotlib's default minor ticks would also make each panel measure dozens
    of extra labels — most of the time a report takes.
    """
    if axis.axis_name == "y":
        axis.axes.set_yscale("log", base=base)
    else:
        axis.axes.set_xscale("log", base=base)
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 0.0
    subs = (1.0, 2.0, 5.0) if base == 10 and decades < 2.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=base, subs=subs, numticks=12))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))


def si(value: float) -> str:
    """0.05 → '0.05', 2000 → '2k', 3e10 → '30G': short tick labels for quantities."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:g}{prefix}"
    return f"{value:g}"


def _facets(rows: pd.DataFrame, col: str = "dtype") -> tuple[list[str], list[str]]:
    return sorted(rows["machine"].unique()), sorted(rows[col].unique())


def _panel_title(ax: Axes, machine: str, col_value: str, machines: list[str], extra: str = "") -> None:
    title = f"{col_value}{extra}"
    ax.set_title(f"{machine}\n{title}" if len(machines) > 1 else title, fontsize=9.5)


def single_timing(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one timing kind per (machine, dtype) panel: the most common, queued on a tie.

    `rank` never compares across timing kinds; a panel that mixed them would compare by
    eye what the ranking refuses to. The rows dropped are returned as notes.
    """
    kept, notes = [], []
    for _, panel in rows.groupby(["machine", "dtype"], sort=False):
        counts = panel["timing"].value_counts()
        best = max(counts.index, key=lambda t: (counts[t], t == "queued"))
        kept.append(panel[panel["timing"] == best])
        for _, r in panel[panel["timing"] != best].iterrows():
            notes.append(f"{r['framework']} · {r['case']} · {r['dtype']} on {r['machine']}: "
                         f"timed {r['timing']}, the others {best}")
    return (pd.concat(kept) if kept else rows.iloc[0:0]), notes


def throughput_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str) -> Chart | None:
    rows = rows[rows["throughput"].map(lambda v: math.isfinite(v) and v > 0)]
    if rows.empty:
        return None
    unit = str(rows["throughput_unit"].iloc[0])
    machines, dtypes = _facets(rows)
    frameworks = sorted(rows["framework"].unique())
    categories = case_order(rows)
    fig, axes = _grid(len(machines), len(dtypes), _panel_width(len(categories), len(frameworks)))
    for i, machine in enumerate(machines):
        for j, dtype in enumerate(dtypes):
            ax, panel = axes[i][j], rows[(rows["machine"] == machine) & (rows["dtype"] == dtype)]
            series = [
                Series(fw, colours[fw], *(dict(zip(part["case"], part[c])) for c in
                                          ("throughput", "throughput_low", "throughput_high")))
                for fw, part in panel.groupby("framework")
            ]
            draw_bars(ax, categories, series, wants_log(panel["throughput"].tolist()))
            timing = panel["timing"].iloc[0] if len(panel) else ""
            _panel_title(ax, machine, dtype, machines, f" · {timing} timing" if timing else "")
            ax.set_ylabel(f"throughput ({unit})")
    _legend(fig, _framework_handles(frameworks, colours))
    return Chart(chart_id, "throughput", f"Throughput ({unit}, higher is better)", to_svg(fig, chart_id),
                 "Median per-call throughput; error bars are the 95% confidence interval of the median time, "
                 "converted to throughput. A panel whose values span more than 20× has a log scale.")


def speedup_chart(rows: pd.DataFrame, colours: dict[str, str], baseline: str, chart_id: str) -> Chart | None:
    """Speed-up = baseline time / framework time, within one like-with-like group only."""
    keys = list(COMPARABLE)
    base = rows[rows["framework"] == baseline][keys + ["median_s"]].rename(columns={"median_s": "base_s"})
    merged = rows[rows["framework"] != baseline].merge(base, on=keys)
    if merged.empty:
        return None
    merged["speedup"] = merged["base_s"] / merged["median_s"]
    machines, dtypes = _facets(merged)
    frameworks = sorted(merged["framework"].unique())
    categories = case_order(merged)
    fig, axes = _grid(len(machines), len(dtypes), _panel_width(len(categories), len(frameworks)))
    for i, machine in enumerate(machines):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            panel = merged[(merged["machine"] == machine) & (merged["dtype"] == dtype)]
            series = [Series(fw, colours[fw], dict(zip(part["case"], part["speedup"])))
                      for fw, part in panel.groupby("framework")]
            draw_bars(ax, categories, series, log=False, bottom=1.0)
            log_axis(ax.yaxis, base=2)
            reach = max(1.0, max((abs(math.log2(v)) for v in panel["speedup"] if v > 0), default=1.0) + 0.25)
            ax.set_ylim(2 ** -reach, 2 ** reach)  # symmetric: ×2 faster and ×2 slower look alike
            ax.axhline(1.0, color="#555", linewidth=1.0)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"×{v:g}"))
            _panel_title(ax, machine, dtype, machines, f" · vs {baseline}")
            ax.set_ylabel(f"speed-up vs {baseline} (×)")
    _legend(fig, _framework_handles(frameworks, colours))
    return Chart(chart_id, "speedup", f"Speed-up relative to {baseline}", to_svg(fig, chart_id),
                 f"{baseline}'s median time divided by each framework's, for the same case, dtype and timing: "
                 f"bars up from ×1 are faster than {baseline}, bars down are slower. Log scale, base 2.")


def scaling_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str) -> Chart | None:
    """Throughput against work per call; needs at least two distinct sizes to say anything."""
    rows = rows[rows["throughput"].map(lambda v: math.isfinite(v) and v > 0) & rows["flops"].gt(0)]
    if rows["flops"].nunique() < 2:
        return None
    unit = str(rows["throughput_unit"].iloc[0])
    machines, dtypes = _facets(rows)
    fig, axes = _grid(len(machines), len(dtypes), 4.2)
    for i, machine in enumerate(machines):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            panel = rows[(rows["machine"] == machine) & (rows["dtype"] == dtype)]
            for fw, part in panel.groupby("framework"):
                # Cases with equal FLOPs but different shapes share an x: keep the best of them.
                part = part.sort_values("throughput").drop_duplicates("flops", keep="last").sort_values("flops")
                yerr = np.clip(np.vstack([part["throughput"] - part["throughput_low"],
                                          part["throughput_high"] - part["throughput"]]), 0, None)
                ax.errorbar(part["flops"], part["throughput"], yerr=np.nan_to_num(yerr), color=colours[fw],
                            marker="o", markersize=4, linewidth=1.6, capsize=2, label=fw)
            log_axis(ax.xaxis)
            if wants_log(panel["throughput"]):
                log_axis(ax.yaxis)
            _panel_title(ax, machine, dtype, machines)
            ax.set_xlabel("work per call (FLOP)")
            ax.set_ylabel(f"throughput ({unit})")
    _legend(fig, _framework_handles(sorted(rows["framework"].unique()), colours))
    return Chart(chart_id, "scaling", "Scaling with problem size", to_svg(fig, chart_id),
                 "Throughput against the work one call does (log scale). Where several shapes do the same "
                 "number of FLOPs, the best of them is drawn; the table has every case.")


def latency_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str) -> Chart | None:
    """Latency vs queued per call, and the dispatch overhead that separates them."""
    rows = rows[rows["latency_median_s"].notna() | rows["queued_median_s"].notna()]
    if rows.empty:
        return None
    rows = rows.assign(label=rows["case"] + " · " + rows["dtype"])
    machines = sorted(rows["machine"].unique())
    frameworks = sorted(rows["framework"].unique())
    categories = _ordered_labels(rows)
    fig, axes = _grid(len(machines), 2, _panel_width(len(categories), len(frameworks) * 1.4))
    for i, machine in enumerate(machines):
        panel = rows[rows["machine"] == machine]
        series, overhead = [], []
        for fw, part in panel.groupby("framework"):
            series.append(Series(f"{fw} latency", colours[fw], dict(zip(part["label"], part["latency_median_s"] / MICRO)),
                                 hatch="////", alpha=0.45))
            series.append(Series(f"{fw} queued", colours[fw], dict(zip(part["label"], part["queued_median_s"] / MICRO))))
            overhead.append(Series(fw, colours[fw], dict(zip(part["label"], part["dispatch_overhead_s"] / MICRO))))
        left, right = axes[i]
        times = pd.concat([panel["latency_median_s"], panel["queued_median_s"]]) / MICRO
        draw_bars(left, categories, series, wants_log(times.tolist()))
        left.set_ylabel("time per call (µs)")
        _panel_title(left, machine, "latency (hatched) vs queued (solid)", machines)
        draw_bars(right, categories, overhead, log=False)
        right.axhline(0, color="#555", linewidth=0.8)
        right.set_ylabel("dispatch overhead (µs)")
        _panel_title(right, machine, "dispatch overhead = latency − queued", machines)
    handles = _framework_handles(frameworks, colours) + [
        Patch(facecolor="#999", alpha=0.45, hatch="////", label="latency"), Patch(facecolor="#999", label="queued")]
    _legend(fig, handles)
    return Chart(chart_id, "latency", "Latency vs queued, and dispatch overhead", to_svg(fig, chart_id),
                 "Latency: one call, then the framework's completion barrier (what a single request sees). "
                 "Queued: k calls back to back, one barrier, divided by k (a model's steady state). "
                 "Their difference is the per-call cost of dispatch and synchronisation; a negative value is noise.")


def _ordered_labels(rows: pd.DataFrame) -> list[str]:
    order = rows.sort_values(["flops", "bytes_moved", "case", "dtype"], na_position="last")
    return list(dict.fromkeys(order["label"]))


def memory_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str) -> Chart | None:
    metrics = (("peak_device_bytes", "peak device memory (MiB)"), ("peak_rss_bytes", "peak process RSS (MiB)"))
    if all(rows[c].isna().all() for c, _ in metrics):
        return None
    rows = rows.assign(label=rows["case"] + " · " + rows["dtype"])
    machines = sorted(rows["machine"].unique())
    frameworks = sorted(rows["framework"].unique())
    categories = _ordered_labels(rows)
    fig, axes = _grid(len(machines), 2, _panel_width(len(categories), len(frameworks)))
    for i, machine in enumerate(machines):
        panel = rows[rows["machine"] == machine]
        for ax, (column, label) in zip(axes[i], metrics):
            values = panel[column].astype(float) / MIB
            series = [Series(fw, colours[fw], dict(zip(part["label"], values[part.index])))
                      for fw, part in panel.groupby("framework")]
            draw_bars(ax, categories, series, wants_log(values.tolist()))
            ax.set_ylabel(label)
            _panel_title(ax, machine, label.split(" (")[0], machines)
            if values.isna().all():
                ax.text(0.5, 0.5, "not reported by any framework here", transform=ax.transAxes,
                        ha="center", va="center", color="#777")
    _legend(fig, _framework_handles(frameworks, colours))
    return Chart(chart_id, "memory", "Memory", to_svg(fig, chart_id),
                 "Peak device memory is the framework's own allocator counter (absent where it keeps none: "
                 "see peak_device_note in the table); RSS is the worker process's peak resident set.")


def roofline_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str) -> tuple[Chart | None, list[Roofs]]:
    """Achieved FLOP/s against arithmetic intensity, under each device's roofs."""
    rows = rows[rows["intensity"].map(lambda v: math.isfinite(v) and v > 0)
                & rows["flop_per_s"].map(lambda v: math.isfinite(v) and v > 0)]
    if rows.empty:
        return None, []
    devices = list(rows.groupby(["machine", "backend"], sort=True))
    n_cols = min(3, len(devices))
    n_rows = math.ceil(len(devices) / n_cols)
    fig, axes = _grid(n_rows, n_cols, 5.2, 3.9)
    dtypes = sorted(rows["dtype"].unique())
    markers = dict(zip(dtypes, DTYPE_MARKERS * 2))
    all_roofs = []
    for ax, ((machine, backend), part) in zip(axes.flat, devices):
        roofs = roofs_for(part)
        all_roofs.append(roofs)
        x = part["intensity"].astype(float)
        lo, hi = x.min() / 4, x.max() * 4
        if roofs.bandwidth:
            ridges = [p.value / roofs.bandwidth.value for p in roofs.compute.values()]
            lo, hi = min([lo, *ridges]) / 2, max([hi, *ridges]) * 2
        xs = np.geomspace(lo, hi, 200)
        for k, (dtype, peak) in enumerate(roofs.compute.items()):
            ys = np.full_like(xs, peak.value)
            if roofs.bandwidth:
                ys = np.minimum(ys, roofs.bandwidth.value * xs)
            ax.plot(xs, ys / T, color="#444", linewidth=1.2, linestyle=("-", "--", ":", "-.")[k % 4],
                    label=f"{dtype} roof ({'measured' if peak.measured else 'datasheet'})")
        for (fw, dtype), pts in part.groupby(["framework", "dtype"]):
            ax.scatter(pts["intensity"], pts["flop_per_s"] / T, color=colours[fw], marker=markers[dtype],
                       s=28, edgecolor="white", linewidth=0.5, zorder=3)
        log_axis(ax.xaxis)
        log_axis(ax.yaxis)
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_ylabel("achieved TFLOP/s")
        ax.set_title(f"{machine}\n{roofs.device}" if roofs.device.split(" (")[0] not in machine else machine, fontsize=9)
        ax.legend(loc="lower right", fontsize=7.5)
    for ax in list(axes.flat)[len(devices):]:
        ax.set_visible(False)
    handles = _framework_handles(sorted(rows["framework"].unique()), colours) + [
        Line2D([], [], color="#666", marker=markers[d], linestyle="", label=d) for d in dtypes]
    _legend(fig, handles)
    return Chart(chart_id, "roofline", "Roofline", to_svg(fig, chart_id),
                 "Each point is one case at its headline timing; roofs are min(peak compute, bandwidth × intensity)."), all_roofs


def loss_chart(rows: pd.DataFrame, colours: dict[str, str], chart_id: str, max_panels: int = 12) -> Chart | None:
    """Training loss per step, one line per framework, a panel per (machine, case, dtype)."""
    curves = [(r, _loss_points(r["metrics_dict"].get("loss_curve"))) for _, r in rows.iterrows()]
    curves = [(r, pts) for r, pts in curves if pts is not None]
    if not curves:
        return None
    frame = pd.DataFrame([{"panel": (r["machine"], f"{r['case']} · {r['dtype']}"), "framework": r["framework"],
                           "points": pts} for r, pts in curves])
    panels = list(dict.fromkeys(frame["panel"]))[:max_panels]
    n_cols = min(3, len(panels))
    fig, axes = _grid(math.ceil(len(panels) / n_cols), n_cols, 4.4, 3.0)
    machines = sorted({m for m, _ in panels})
    losses = [y for pts in frame["points"] for y in pts[1]]
    for ax, panel in zip(axes.flat, panels):
        for _, r in frame[frame["panel"] == panel].iterrows():
            ax.plot(r["points"][0], r["points"][1], color=colours[r["framework"]], linewidth=1.5, label=r["framework"])
        _panel_title(ax, panel[0], panel[1], machines)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        if wants_log(losses):
            log_axis(ax.yaxis)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _legend(fig, _framework_handles(sorted(frame["framework"].unique()), colours))
    hidden = len(dict.fromkeys(frame["panel"])) - len(panels)
    return Chart(chart_id, "loss", "Loss curves", to_svg(fig, chart_id),
                 "Training loss per step, as each framework reported it in the row's metrics.",
                 [f"{hidden} more case(s) with loss curves are not drawn; their rows are in the table."] if hidden else [])


def _loss_points(curve: object) -> tuple[list[float], list[float]] | None:
    """A loss curve as (steps, losses): a list of numbers, of [step, loss] pairs or of
    {"step", "loss"} dicts. Anything else, or a curve with no finite loss, is no curve."""
    if not isinstance(curve, list) or not curve:
        return None
    steps: list[float] = []
    losses: list[float] = []
    for i, item in enumerate(curve):
        if isinstance(item, dict):
            step, loss = item.get("step", i), item.get("loss")
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            step, loss = item
        else:
            step, loss = i, item
        if isinstance(loss, (int, float)) and math.isfinite(loss) and isinstance(step, (int, float)):
            steps.append(float(step))
            losses.append(float(loss))
    return (steps, losses) if losses else None

