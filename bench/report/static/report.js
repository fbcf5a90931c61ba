// metalbench report: draws the page from its embedded data (#report-data) with plotly.js.
// Inlined into index.html after plotly.js. Nothing is fetched.
//
// Deciding happens in Python (bench/report/payload.py): which rows are comparable, the
// interval of a ratio, each workload's units. This script lays out, filters and draws.
// Strings from results files reach the DOM only as textContent, and plotly only through
// esc() (plotly reads a subset of HTML in its text).
//
// The view (filters, the case drilled into) lives in the address's #fragment, so a link
// reproduces it. Charts are drawn when they come near the viewport, so a page of 1,000
// rows is interactive at once; "#selftest=1" draws every chart, then checks in the page
// that no two text elements of a chart overlap and writes the outcome onto <html>
// (data-report-*) and into #selftest for the end-to-end test to read.
(function () {
  "use strict";
  const root = document.documentElement;
  const marks = { script: Math.round(performance.now()) };  // plotly.js parsed by now
  window.addEventListener("error", function (event) {
    root.dataset.reportErrors = String(Number(root.dataset.reportErrors || 0) + 1);
    root.dataset.reportLastError = String(event.message || "error");
  });

  // Samples travel as [reference, thousandths of it...] (bench/report/payload.py).
  function unpack(packed) {
    if (!packed || packed.length < 2) return [];
    const ref = packed[0];
    return packed.slice(1).map(function (v) { return v * ref / 1000; });
  }
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const ROWS = DATA.rows.map(function (values, i) {
    const row = { i: i };
    DATA.columns.forEach(function (name, j) { row[name] = values[j]; });
    ["lat_samples", "q_samples", "dev_samples", "samples"].forEach(function (name) { row[name] = unpack(row[name]); });
    return row;
  });
  marks.data = Math.round(performance.now());
  const WORKLOADS = {};
  DATA.workloads.forEach(function (w) { WORKLOADS[w.name] = w; });
  const COLOURS = DATA.colours;
  const GROUPS = DATA.groups;
  const GROUP_BY_ID = {};
  GROUPS.forEach(function (g) { GROUP_BY_ID[g.id] = g; });
  const FILTERS = ["run", "machine", "dtype", "mode", "timing"];
  // Runs are a dimension: each machine shows one run (its newest by default, or the run the
  // "run" filter names); a figure, bar or ratio is always one run's (bench/report/runs.py).
  const RUNS = DATA.runs || {};
  const RUN_INFO = {};
  Object.keys(RUNS).forEach(function (machine) {
    RUNS[machine].forEach(function (run, i) { RUN_INFO[run.id] = Object.assign({ machine: machine, index: i }, run); });
  });
  // By default a machine shows each case at the newest run that measured it (rows flagged
  // `latest`, groups of run "newest", ranked in Python); the run filter shows one run of a machine.
  let CHOSEN = {};
  function updateShownRuns() {
    CHOSEN = {};
    if (state.run && RUN_INFO[state.run]) CHOSEN[RUN_INFO[state.run].machine] = state.run;
  }
  function rowShown(r) { return CHOSEN[r.machine] ? r.run === CHOSEN[r.machine] : r.latest; }
  function groupShown(g) { return g.run === (CHOSEN[g.machine] || "newest"); }
  function runLabel(id) {
    const info = RUN_INFO[id];
    return info ? id + " · " + info.started + (info.newest ? " (newest)" : "") : id;
  }
  const DETAIL = document.getElementById("detail");  // moves under the clicked case's table
  const KIND_COLOURS = { latency: "#8d99ae", queued: "#2b2d42", device: "#e07a5f", overhead: "#b8b08d", first: "#6d597a" };
  const MACHINE_COLOURS = ["#264653", "#e76f51", "#2a9d8f", "#8e7dbe", "#e9c46a", "#577590"];

  // -- formatting ------------------------------------------------------------------------
  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function finite(v) { return typeof v === "number" && isFinite(v); }
  function sig(v, n) {
    if (!finite(v)) return "—";
    const a = Math.abs(v);
    if (a >= 1e4) {
      const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
      for (const [scale, p] of units) if (a >= scale) return Number((v / scale).toPrecision(n || 3)) + p;
    }
    return String(Number(v.toPrecision(n || 3)));
  }
  function fmtRatio(r) {
    if (!finite(r)) return "—";
    return r < 9.995 ? r.toFixed(2) : sig(r);
  }
  function fmtTime(s) {
    if (!finite(s)) return "—";
    const a = Math.abs(s);
    if (a === 0) return "0";
    if (a < 1e-6) return sig(s * 1e9) + " ns";
    if (a < 1e-3) return sig(s * 1e6) + " µs";
    if (a < 1) return sig(s * 1e3) + " ms";
    return sig(s) + " s";
  }
  function fmtBytes(b) {
    if (!finite(b)) return "—";
    const units = [[2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]];
    for (const [scale, u] of units) if (Math.abs(b) >= scale) return sig(b / scale) + " " + u;
    return b + " B";
  }
  // One time unit for a whole axis, so ticks read 120, 250, 500 and not 1.2e-4.
  function timeUnit(values) {
    const xs = values.filter(finite).map(Math.abs);
    const top = xs.length ? Math.max.apply(null, xs) : 1;
    if (top < 1e-3) return { name: "µs", scale: 1e6 };
    if (top < 1) return { name: "ms", scale: 1e3 };
    return { name: "s", scale: 1 };
  }
  function wantsLog(values, span) {
    const xs = values.filter(function (v) { return finite(v) && v > 0; });
    return xs.length > 1 && Math.max.apply(null, xs) / Math.min.apply(null, xs) > (span || 20);
  }
  // A log axis labelled at 1-2-5 steps (whole decades over long spans), in plain numbers:
  // plotly's own log ticks label minor steps (2 … 9) that crowd on a phone.
  function logAxis(axis, values) {
    const xs = values.filter(function (v) { return finite(v) && v > 0; });
    axis.type = "log";
    if (!xs.length) return axis;
    const lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    const decades = Math.log10(hi / lo);
    const steps = decades > 2.5 ? [1] : decades > 1 ? [1, 3] : [1, 2, 5];
    const vals = [];
    for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)) + 1; e++) {
      steps.forEach(function (m) { vals.push(m * Math.pow(10, e)); });
    }
    const every = decades > 6 ? 2 : 1;
    axis.tickvals = vals.filter(function (v, i) { return v >= lo / 1.5 && v <= hi * 1.5 && (every === 1 || Math.round(Math.log10(v)) % every === 0); });
    if (axis.tickvals.length < 2) axis.tickvals = vals.filter(function (v) { return v >= lo / 10 && v <= hi * 10; });
    const most = narrow() ? 4 : 9;
    while (axis.tickvals.length > most) axis.tickvals = axis.tickvals.filter(function (_, i) { return i % 2 === 0; });
    axis.ticktext = axis.tickvals.map(function (v) { return sig(v); });
    return axis;
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      if (k === "class") node.className = attrs[k];
      else if (k === "dataset") Object.assign(node.dataset, attrs[k]);
      else node.setAttribute(k, attrs[k]);
    }
    if (text != null) node.textContent = text;
    return node;
  }
  function badge(text, cls, title) {
    return el("span", Object.assign({ class: "badge " + (cls || "") }, title ? { title: title } : {}), text);
  }

  // -- the view in the address -----------------------------------------------------------
  const state = { run: "", machine: "", dtype: "", mode: "", timing: "", case: "", q: "", status: "", selftest: "", pair: "" };
  function readHash() {
    const hash = location.hash.slice(1);
    if (!hash.includes("=")) return hash;  // a plain anchor: scroll there after drawing
    const params = new URLSearchParams(hash);
    for (const k in state) state[k] = params.get(k) || "";
    return "";
  }
  function writeHash() {
    const params = new URLSearchParams();
    for (const k in state) if (state[k] && k !== "selftest") params.set(k, state[k]);
    if (state.selftest) params.set("selftest", state.selftest);
    const text = params.toString();
    history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
  }
  // The page's one filter, for rows and groups alike. Every view obeys the machine filter;
  // `shown` (rowShown or groupShown: the run selector) and `facets` (dtype, mode, timing) say
  // what else it obeys. The matrix and charts obey both; the table every facet but not the run
  // (every run is in it, the run a column); the status counts and the failures list the run
  // only (every failure of the runs shown, whatever the dtype).
  function matches(x, shown, facets) {
    return (!state.machine || x.machine === state.machine) && (!shown || shown(x)) &&
      (!facets || ((!state.dtype || x.dtype === state.dtype) && (!state.mode || state.mode === "best" || x.mode === state.mode) &&
        (!state.timing || !x.timing || x.timing === state.timing)));
  }
  function rowMatches(r) { return matches(r, rowShown, true); }
  const narrow = function () { return document.documentElement.clientWidth < 640; };

  // -- derived per row -------------------------------------------------------------------
  function ranked(r) { return r.status === "ok" && !r.not_ranked; }
  // "NVIDIA H100 80GB HBM3 · Intel(R) Xeon(R) … / Linux x86_64" → "NVIDIA H100 80GB HBM3" in
  // labels; the full name is in the hover and the headline.
  function shortMachine(name) { return String(name).split(" · ")[0].split(" / ")[0]; }
  function categoryParts(r, withMachine) {
    const parts = [r.case, r.dtype];
    if (DATA.filters.mode.length > 1 || r.mode !== "eager") parts.push(r.mode);
    if (DATA.filters.timing.length > 1 && r.timing) parts.push(r.timing);
    if (withMachine) parts.push(shortMachine(r.machine));
    return parts;
  }
  // A category label: one line on a wide screen; on a phone, wrapped at " · " so the
  // bars keep most of the width.
  function categoryLabel(parts) {
    const safe = parts.filter(Boolean).map(esc);
    if (!narrow()) return safe.join(" · ");
    const lines = [];
    let line = "";
    safe.forEach(function (p) {
      if (line && (line + " · " + p).length > 24) { lines.push(line); line = p; } else line = line ? line + " · " + p : p;
    });
    if (line) lines.push(line);
    return lines.join("<br>");
  }
  function noise(lo, hi) { return finite(lo) && finite(hi) ? (hi - lo) / 2 : NaN; }
  // Dispatch overhead = latency − queued, unless the two medians' intervals say the
  // difference is noise: then it is drawn as zero and the note says so.
  function overhead(r) {
    if (!finite(r.lat) || !finite(r.q)) return { value: NaN, note: "" };
    const diff = r.lat - r.q;
    const band = Math.hypot(noise(r.lat_lo, r.lat_hi) || 0, noise(r.q_lo, r.q_hi) || 0);
    if (Math.abs(diff) <= band) return { value: 0, note: "within the noise (measured " + fmtTime(diff) + ", ±" + fmtTime(band) + "): drawn as zero" };
    if (diff < 0) return { value: 0, note: "latency below queued by " + fmtTime(-diff) + ", beyond the noise (±" + fmtTime(band) + "): not an overhead, drawn as zero" };
    return { value: diff, note: "" };
  }
  function roofsFor(r) {
    return DATA.roofs.find(function (x) { return x.machine === r.machine && x.backend === r.backend; });
  }
  function checksText(r) {
    return [["barrier", r.barrier_check], ["placement", r.placement_check]].filter(function (c) { return c[1]; })
      .map(function (c) { return c[0] + " check: " + c[1]; }).join("; ");
  }
  // The facts of a row, for hover (plotly: esc'd, <br>-joined).
  function facts(r, extra) {
    const lines = [
      "<b>" + esc(r.framework) + "</b> · " + esc(r.impl || r.workload) + " · " + esc(r.mode),
      esc(r.case) + " · " + esc(r.dtype) + (r.precision ? " (measured " + esc(r.precision) + ")" : ""),
      esc(r.params),
    ];
    if (extra) lines.push.apply(lines, extra);
    if (r.status === "ok") {
      lines.push(esc(r.timing) + " median " + fmtTime(r.med) + " (95% CI " + fmtTime(r.lo) + " – " + fmtTime(r.hi) + "), " +
        sig(r.n) + " samples" + (finite(r.k) && r.timing === "queued" ? ", k=" + sig(r.k) : ""));
      if (finite(r.vs_best)) lines.push(r.rank === 1 ? "fastest in its group" : sig(r.vs_best) + "× the fastest's time");
      if (finite(r.first)) lines.push("first call " + fmtTime(r.first));
    } else {
      lines.push(esc(r.status) + ": " + esc(r.reason));
    }
    if (r.not_ranked && r.status === "ok") lines.push("not compared: " + esc(r.not_ranked));
    const memory = [["peak device", r.peak_dev], ["peak RSS", r.peak_rss], ["model weights", r.model_bytes]]
      .filter(function (m) { return finite(m[1]) && m[1] > 0; }).map(function (m) { return m[0] + " " + fmtBytes(m[1]); });
    if (memory.length) lines.push(memory.join(" · "));
    if (checksText(r)) lines.push(esc(checksText(r)));
    lines.push(esc(r.versions || r.framework + " " + r.version) + " · " + esc(r.backend) + (r.device ? " · " + esc(r.device) : ""));
    lines.push("run " + esc(runLabel(r.run)) + (finite(r.processes) && r.processes > 1 ? " · " + r.processes + " processes (between-process interval)" : ""));
    return lines.join("<br>");
  }

  // -- charts: placeholders drawn when near the viewport -----------------------------------
  const charts = [];
  const PLOT_CONFIG = { displayModeBar: false, responsive: true };
  let observer = null;
  const FONT_FAMILY = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  function baseLayout(height) {
    return {
      height: height, autosize: true,
      margin: { l: 64, r: 16, t: 8, b: 48, pad: 2 },
      font: { family: FONT_FAMILY, size: 11, color: "#1d2125" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.0, yanchor: "bottom", font: { size: 11 } },
      hoverlabel: { align: "left", font: { size: 11 } },
      // a phone's axis has room for ~4 labels; plotly's own choice assumes more. Margins are
      // set, not automargin: automargin draws every chart twice (measure, then redraw), which
      // was a third of the time to draw a 1,355-row page; #selftest checks that no text is cut.
      xaxis: { automargin: false, gridcolor: "#e4e7eb", zeroline: false, nticks: narrow() ? 4 : 0 },
      yaxis: { automargin: false, gridcolor: "#e4e7eb", zeroline: false },
    };
  }
  // A chart: a titled figure whose plot is built by `build` ({data, layout}) when drawn.
  function addChart(container, title, caption, build, kind) {
    const figure = el("figure", { class: "chart", dataset: { kind: kind || "" } });
    const head = el("figcaption");
    head.appendChild(el("b", null, title));
    if (caption) { head.appendChild(document.createTextNode(" — ")); head.appendChild(el("span", { class: "muted" }, caption)); }
    figure.appendChild(head);
    const plot = el("div", { class: "plot" });
    figure.appendChild(plot);
    const notes = el("div", { class: "notes" });
    figure.appendChild(notes);
    container.appendChild(figure);
    const chart = { plot: plot, build: build, drawn: false, notes: notes };
    charts.push(chart);
    if (observer) observer.observe(plot); else draw(chart);
    return chart;
  }
  function draw(chart) {
    if (chart.drawn) return chart.promise;
    chart.drawn = true;
    const spec = chart.build();
    (spec.notes || []).forEach(function (n) { chart.notes.appendChild(el("p", { class: "note" }, n)); });
    const t0 = performance.now();
    chart.promise = Plotly.newPlot(chart.plot, spec.data, spec.layout, PLOT_CONFIG).then(function () {
      chart.plot.dataset.rendered = "1";
    });
    chart.ms = performance.now() - t0;  // the synchronous part of drawing it: #selftest reports it per chart kind
    return chart.promise;
  }
  function clearCharts(container) {
    for (let i = charts.length - 1; i >= 0; i--) {
      if (container.contains(charts[i].plot)) {
        if (observer) observer.unobserve(charts[i].plot);
        if (charts[i].drawn) Plotly.purge(charts[i].plot);
        charts.splice(i, 1);
      }
    }
    container.replaceChildren();
  }
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        const chart = charts.find(function (c) { return c.plot === entry.target; });
        if (chart) { observer.unobserve(entry.target); draw(chart); }
      });
    }, { rootMargin: "600px 0px" });
  }

  // Height of a chart with one row per category: room for each category's label lines and
  // bars, plus the legend (which wraps on a phone) and the x axis with its title.
  function categoryHeight(categories, lines, traces, legendItems) {
    const per = Math.max(lines * 16 + 8, traces * 18 + 10);  // a bar's value label (10 px) fits its bar
    const legendRows = narrow() ? Math.ceil((legendItems || traces) / 3) : 1;
    return Math.max(150, categories * per + 64 + 22 * legendRows);
  }

  // A layout whose y axis lists `cats` top to bottom in their given order, tall enough for
  // their label lines (several on a phone) and `traces` bars or boxes each.
  // Width in px of a label as plotly draws it (its tags dropped, entities read), from a canvas.
  let measureCanvas = null;
  function labelWidth(label, size) {
    measureCanvas = measureCanvas || document.createElement("canvas").getContext("2d");
    measureCanvas.font = (size || 11) + "px " + FONT_FAMILY;
    const holder = document.createElement("textarea");
    return Math.max.apply(null, String(label).split("<br>").map(function (line) {
      holder.innerHTML = line.replace(/<[^>]*>/g, "");
      return measureCanvas.measureText(holder.value).width;
    }));
  }
  function categoryLayout(cats, traces, legendItems) {
    const lines = narrow() ? Math.max.apply(null, cats.map(function (c) { return c.split("<br>").length; })) : 1;
    const layout = baseLayout(categoryHeight(cats.length, lines, traces, legendItems));
    const widest = Math.max.apply(null, cats.map(function (c) { return labelWidth(c); }).concat([20]));
    layout.margin.l = Math.ceil(Math.min(widest, document.documentElement.clientWidth * 0.6)) + 12;
    layout.yaxis.type = "category";
    layout.yaxis.autorange = "reversed";
    layout.yaxis.categoryorder = "array";
    layout.yaxis.categoryarray = cats;
    return layout;
  }

  // Horizontal grouped bars: one category per case, one trace per framework.
  function barChart(rows, valueOf, unit, opts) {
    opts = opts || {};
    const cats = [];
    const seen = {};
    rows.forEach(function (r) {
      const label = categoryLabel(categoryParts(r, opts.withMachine));
      if (!(label in seen)) { seen[label] = true; cats.push(label); }
    });
    const byFw = {};
    rows.forEach(function (r) { (byFw[r.framework] = byFw[r.framework] || []).push(r); });
    const values = [];
    const data = Object.keys(byFw).sort().map(function (fw) {
      const part = byFw[fw];
      const vs = part.map(function (r) { return valueOf(r); });
      vs.forEach(function (v) { values.push(v[0]); });
      const trace = {
        type: "bar", orientation: "h", name: esc(fw), marker: { color: COLOURS[fw] },
        x: vs.map(function (v) { return v[0]; }), y: part.map(function (r) { return categoryLabel(categoryParts(r, opts.withMachine)); }),
        // the value beside each bar: on a log axis a bar's length is not proportional to it
        text: vs.map(function (v) { return finite(v[0]) ? sig(v[0]) : ""; }), textposition: "outside", cliponaxis: false,
        textfont: { size: 10, color: "#1d2125" }, constraintext: "none",
        hovertext: part.map(function (r, j) { return facts(r, [(opts.name ? esc(opts.name) + ": " : "") + sig(vs[j][0]) + " " + esc(unit)].concat(vs[j][3] || [])); }),
        hoverinfo: "text",
      };
      if (vs.some(function (v) { return finite(v[1]) && finite(v[2]); })) {
        trace.error_x = { type: "data", symmetric: false, thickness: 1, width: 2, color: "#333",
          array: vs.map(function (v) { return finite(v[2]) ? Math.max(0, v[2] - v[0]) : 0; }),
          arrayminus: vs.map(function (v) { return finite(v[1]) ? Math.max(0, v[0] - v[1]) : 0; }) };
      }
      return trace;
    });
    (opts.extra || []).forEach(function (t) { data.push(t); });
    const traces = Object.keys(byFw).length;
    const layout = categoryLayout(cats, traces + (opts.extra || []).length);
    layout.barmode = "group";  // one bar per framework per category: runs never share one (rowMatches)
    layout.bargap = 0.25;
    layout.margin.r = 48;  // room for the last bar's value
    layout.margin.b = 36;  // no axis title: the chart's caption names the unit, and a title could meet the ticks
    const scaleValues = values.concat(opts.scaleValues || []);
    if (opts.log !== false && wantsLog(scaleValues)) logAxis(layout.xaxis, scaleValues);
    layout.showlegend = true;
    return { data: data, layout: layout };
  }

  // -- the landing matrix ------------------------------------------------------------------
  // "best available": per case, each framework at its fastest mode (named), compared.
  function bestAvailableGroups() {
    const byCase = {};
    GROUPS.forEach(function (g) {
      const key = [g.machine, g.run, g.workload, g.params, g.dtype, g.timing, g.conditions].join("\u0000");
      (byCase[key] = byCase[key] || []).push(g);
    });
    return Object.keys(byCase).map(function (key, n) {
      const gs = byCase[key];
      const cells = {};
      gs.forEach(function (g) {
        for (const fw in g.cells) {
          const c = g.cells[fw];
          const prev = cells[fw];
          if (c.status === "ok") {
            if (!prev || prev.status !== "ok" || ROWS[c.row].med < ROWS[prev.row].med) cells[fw] = Object.assign({}, c);
          } else if (!prev) cells[fw] = Object.assign({}, c);
        }
      });
      const ok = Object.keys(cells).filter(function (fw) { return cells[fw].status === "ok"; });
      const best = ok.reduce(function (b, fw) { return b === null || ROWS[cells[fw].row].med < ROWS[cells[b].row].med ? fw : b; }, null);
      ok.forEach(function (fw) {
        const r = ROWS[cells[fw].row];
        const b = ROWS[cells[best].row];
        cells[fw].ratio = r.med / b.med;
        cells[fw].lo = r.lo / b.hi;
        cells[fw].hi = r.hi / b.lo;
        cells[fw].showMode = true;
      });
      return Object.assign({}, gs[0], { id: "b" + n, mode: "best", cells: cells, bestOf: gs.map(function (g) { return g.id; }) });
    });
  }
  let BEST = null;
  function visibleGroups() {
    if (state.mode === "best") { BEST = BEST || bestAvailableGroups(); return BEST.filter(function (g) { return matches(g, groupShown, true); }); }
    return GROUPS.filter(function (g) { return matches(g, groupShown, true); });
  }
  function ratioColour(ratio) {
    // 1× → green, 3× and beyond → red, on a log scale
    const t = Math.min(1, Math.log(Math.max(ratio, 1)) / Math.log(3));
    const hue = 130 * (1 - t);
    return "hsl(" + hue + ", 55%, " + (88 - 6 * t) + "%)";
  }
  function renderMatrix() {
    const box = document.getElementById("matrix");
    box.replaceChildren();
    const groups = visibleGroups();
    if (!groups.length) { box.appendChild(el("p", { class: "empty" }, "No case matches these filters.")); return; }
    const machines = [];
    groups.forEach(function (g) { if (!machines.includes(g.machine)) machines.push(g.machine); });
    machines.forEach(function (machine) {
      const mine = groups.filter(function (g) { return g.machine === machine; });
      const block = el("div", { class: "machine-block" });
      const head3 = el("h3", null, "On " + machine);
      const runs = [];
      mine.forEach(function (g) { Object.keys(g.cells).forEach(function (fw) { const run = ROWS[g.cells[fw].row].run; if (!runs.includes(run)) runs.push(run); }); });
      runs.sort(function (a, b) { return (RUN_INFO[a] || {}).index - (RUN_INFO[b] || {}).index; });
      head3.appendChild(el("span", { class: "muted small run-name" }, runs.length === 1 ? " · run " + runLabel(runs[0])
        : " · each case at the newest of " + runs.length + " runs that measured it: " + runs.map(runLabel).join("; ")));
      block.appendChild(head3);
      const fws = DATA.frameworks.filter(function (fw) {
        return mine.some(function (g) { return fw in g.cells; });
      });
      const workloads = [];
      mine.forEach(function (g) { if (!workloads.includes(g.workload)) workloads.push(g.workload); });
      workloads.forEach(function (w) {
        const spec = WORKLOADS[w];
        const shown = spec ? (spec.headline || []).map(function (j) { return spec.measures[j]; }) : [];
        const ranking = spec && spec.ranked != null ? spec.measures[spec.ranked] : null;
        const head = el("h4");
        head.appendChild(el("a", { href: "#" + (spec ? spec.anchor : ""), class: "wl-link" }, w));
        if (shown.length) head.appendChild(el("span", { class: "muted small" }, " · figures in cells: " +
          shown.map(function (m) { return m.name + " (" + m.unit + ")"; }).join(", ") +
          (ranking && shown.indexOf(ranking) < 0 ? "; ratios from the timed call (" + ranking.name + ")" : "")));
        block.appendChild(head);
        const wrap = el("div", { class: "table-wrap" });
        const table = el("table", { class: "matrix", dataset: { workload: w } });
        const thead = el("thead");
        const tr = el("tr");
        tr.appendChild(el("th", { scope: "col" }, "case"));
        fws.forEach(function (fw) {
          const th = el("th", { scope: "col", class: "fw" });
          th.appendChild(el("span", { class: "fw-dot", style: "background:" + COLOURS[fw] }));
          th.appendChild(document.createTextNode(fw));
          tr.appendChild(th);
        });
        thead.appendChild(tr);
        table.appendChild(thead);
        const tbody = el("tbody");
        mine.filter(function (g) { return g.workload === w; }).forEach(function (g) {
          const line = el("tr", { dataset: { group: g.id } });
          const th = el("th", { scope: "row", class: "case", title: g.params });
          th.appendChild(el("div", { class: "case-label" }, g.case));
          const badges = el("div", { class: "badges" });
          badges.appendChild(badge(g.dtype, "b-dtype", "dtype: rows were checked to compute at this precision"));
          if (g.mode !== "best") badges.appendChild(badge(g.mode, "b-mode b-" + g.mode, "execution mode"));
          else badges.appendChild(badge("best mode", "b-mode", "each framework at its fastest execution mode, named in its cell"));
          if (g.timing) badges.appendChild(badge(g.timing, "b-timing", g.timing === "queued" ? "k calls, one barrier: per-call steady state" : "one call, then the barrier"));
          th.appendChild(badges);
          line.appendChild(th);
          fws.forEach(function (fw) { line.appendChild(matrixCell(g, fw)); });
          tbody.appendChild(line);
        });
        table.appendChild(tbody);
        wrap.appendChild(table);
        block.appendChild(wrap);
      });
      box.appendChild(block);
    });
  }
  // "generation (tg128)" → "tg128": the short name a cell prints beside its figure
  function shortMeasure(m) { const match = /\(([^)]+)\)$/.exec(m.name); return match ? match[1] : m.name; }
  function measureText(spec, r, j, named) {
    const v = r.measures[j];
    const m = spec.measures[j];
    if (!v || !finite(v[0])) return "";
    // several figures: each named ("tg128 34.4"), the unit in the table's heading; one: with its unit
    return (named ? shortMeasure(m) + " " + sig(v[0]) : sig(v[0]) + " " + m.unit) + (finite(v[1]) && finite(v[2]) ? " (" + sig(v[1]) + "–" + sig(v[2]) + ")" : "");
  }
  function matrixCell(g, fw) {
    const c = g.cells[fw];
    if (!c) return el("td", { class: "cell c-none", title: "not run" }, "—");
    const r = ROWS[c.row];
    if (c.status !== "ok") {
      const td = el("td", { class: "cell c-" + (r.status === "ok" ? "unranked" : r.status), title: c.note || r.status });
      const button = el("button", { type: "button", dataset: { group: g.id, fw: fw } });
      button.appendChild(el("span", { class: "status" }, r.status === "ok" ? "not compared" : r.status));
      if (r.status === "ok" && r.precision) button.appendChild(el("small", null, "ran as " + r.precision));
      // the reason as text, not only on hover (a phone has no hover); clamped, whole in the failures list
      button.appendChild(el("small", { class: "reason" }, c.note || r.reason || r.status));
      td.appendChild(button);
      return td;
    }
    const tied = c.ratio > 1 && finite(c.lo) && c.lo <= 1;
    const td = el("td", { class: "cell c-ok" + (c.ratio === 1 ? " best" : "") + (tied ? " tie" : ""), style: "background:" + ratioColour(c.ratio) });
    const button = el("button", { type: "button", dataset: { group: g.id, fw: fw } });
    button.title = (c.ratio === 1 ? "fastest" : fmtRatio(c.ratio) + "× the fastest's time") + (tied ? " — interval reaches 1: not distinguishable" : "") +
      "\n95% interval " + sig(c.lo) + "–" + sig(c.hi) + "\n" + r.impl + " · " + r.mode + "\nrun " + runLabel(r.run) + "\nclick for samples and timings";
    button.appendChild(el("b", null, (tied ? "≈ " : "") + fmtRatio(c.ratio) + "×"));
    button.appendChild(el("small", null, fmtRatio(c.lo) + "–" + fmtRatio(c.hi)));
    const spec = WORKLOADS[g.workload];
    (spec ? spec.headline || [] : []).forEach(function (j) {
      const text = measureText(spec, r, j, spec.headline.length > 1);
      if (text) button.appendChild(el("small", { class: "value" }, text));
    });
    if (c.showMode) button.appendChild(el("small", { class: "mode" }, r.mode));
    td.appendChild(button);
    return td;
  }

  // -- status counts and the failures list -------------------------------------------------
  const STATUS_ORDER = ["error", "timeout", "unsupported", "skipped"];
  function shownRows() { return ROWS.filter(function (r) { return matches(r, rowShown, false); }); }
  function renderStatus() {
    const box = document.getElementById("status-counts");
    if (!box) return;
    box.replaceChildren();
    const rows = shownRows();
    const counts = {};
    rows.forEach(function (r) { counts[r.status] = (counts[r.status] || 0) + 1; });
    box.appendChild(document.createTextNode(rows.length + " shown: "));
    ["ok"].concat(STATUS_ORDER).forEach(function (s) {
      if (!counts[s]) return;
      // a failure count is a way in: it links to that status's part of the failures list
      const node = s === "ok" ? el("span", { class: "badge s-ok" }, counts[s] + " ok")
        : el("a", { class: "badge s-" + s, href: "#failures-" + s, dataset: { status: s } }, counts[s] + " " + s);
      box.appendChild(node);
      box.appendChild(document.createTextNode(" "));
    });
  }
  function renderFailures() {
    const section = document.getElementById("failures");
    const box = section.querySelector(".failures-list");
    box.replaceChildren();
    const rows = shownRows().filter(function (r) { return r.status !== "ok"; });
    section.hidden = !rows.length;
    const many = DATA.machines.length > 1;
    STATUS_ORDER.forEach(function (status) {
      const mine = rows.filter(function (r) { return r.status === status; });
      if (!mine.length) return;
      const head = el("h3", { id: "failures-" + status }, mine.length + " " + status);
      box.appendChild(head);
      const table = el("table", { class: "failures", dataset: { status: status } });
      const tr = el("tr");
      (many ? ["machine"] : []).concat(["framework", "workload", "case", "dtype", "mode", "reason"]).forEach(function (h) { tr.appendChild(el("th", null, h)); });
      table.appendChild(el("thead")).appendChild(tr);
      const body = table.appendChild(el("tbody"));
      mine.forEach(function (r) {
        const line = el("tr", { dataset: { status: r.status } });
        (many ? [shortMachine(r.machine)] : []).concat([r.framework, r.workload, r.case, r.dtype, r.mode]).forEach(function (t) { line.appendChild(el("td", null, t)); });
        line.appendChild(el("td", { class: "reason" }, r.reason || "(no reason recorded)"));
        body.appendChild(line);
      });
      const wrap = el("div", { class: "table-wrap flat" });
      wrap.appendChild(table);
      box.appendChild(wrap);
    });
  }

  // -- changes: the gate's verdicts between two runs of a machine (bench/report/changes.py) ---
  const CHANGE_TABLE = ["slower", "faster", "now failing", "now correct", "precision changed", "changed definition", "new", "missing"];
  const pairChoice = {};
  function defaultPair(entry) {
    if (pairChoice[entry.machine] && entry.pairs[pairChoice[entry.machine]]) return pairChoice[entry.machine];
    // the run selector's run against the one before it, where that pair was compared
    const i = entry.runs.indexOf(state.run);
    if (i > 0 && entry.pairs[entry.runs[i - 1] + "|" + state.run]) return entry.runs[i - 1] + "|" + state.run;
    return entry.default;
  }
  function fmtChange(c) {
    if (finite(c.ratio)) return sig(c.ratio, 3) + "× (" + sig(c.lo, 3) + "–" + sig(c.hi, 3) + ")";
    if (finite(c.plain_ratio)) return sig(c.plain_ratio, 3) + "× (ratio of medians; no verdict)";
    return "—";
  }
  function changeRow(c, many) {
    const line = el("tr", { class: "v-" + c.verdict.replace(/ /g, "-"), dataset: { verdict: c.verdict, framework: c.framework,
      workload: c.workload, params: c.params, dtype: c.dtype, mode: c.mode, timing: c.timing } });
    // the ratio next to the verdict: on a phone the table scrolls sideways and these two are what a reader came for
    const cells = [c.verdict, fmtChange(c), c.framework, c.workload, c.case, c.dtype, c.mode, c.timing,
      fmtTime(c.before_s) + " → " + fmtTime(c.after_s), c.processes.join(" → "), c.detail];
    cells.forEach(function (t, j) { line.appendChild(el("td", j === 0 ? { class: "verdict" } : null, t || "")); });
    line.cells[4].title = c.params;
    return line;
  }
  function changeTable(cases) {
    const table = el("table", { class: "changes" });
    const tr = el("tr");
    ["verdict", "after ÷ before (95% CI)", "framework", "workload", "case", "dtype", "mode", "timing", "time before → after", "processes", "detail"]
      .forEach(function (h) { tr.appendChild(el("th", null, h)); });
    table.appendChild(el("thead")).appendChild(tr);
    const body = table.appendChild(el("tbody"));
    cases.forEach(function (c) { body.appendChild(changeRow(c)); });
    const wrap = el("div", { class: "table-wrap flat" });
    wrap.appendChild(table);
    return wrap;
  }
  function historyRows(machine, fw, workload, params, dtype, mode, timing) {
    return ROWS.filter(function (r) {
      return r.machine === machine && r.framework === fw && r.workload === workload && r.params === params && r.dtype === dtype &&
        r.mode === mode && (!timing || !r.timing || r.timing === timing) && RUN_INFO[r.run];
    }).sort(function (a, b) { return RUN_INFO[a.run].index - RUN_INFO[b.run].index; });
  }
  // asv's per-benchmark graph: one case's figure in each run of a machine, oldest → newest
  function historyChart(series) {
    const all = [];
    series.forEach(function (s) { s.rows.forEach(function (r) { if (r.status === "ok") all.push(r.med); }); });
    const unit = timeUnit(all);
    const data = series.map(function (s) {
      const ok = s.rows.filter(function (r) { return r.status === "ok" && finite(r.med); });
      return { type: "scatter", mode: "lines+markers", name: esc(s.name), line: { color: COLOURS[s.framework] || "#333", width: 1.6 },
        x: ok.map(function (r) { return esc(RUN_INFO[r.run].started.replace(" UTC", "")).replace(" ", "<br>"); }), y: ok.map(function (r) { return r.med * unit.scale; }),
        error_y: { type: "data", symmetric: false, thickness: 1, width: 3, color: "#333",
          array: ok.map(function (r) { return finite(r.hi) ? Math.max(0, (r.hi - r.med) * unit.scale) : 0; }),
          arrayminus: ok.map(function (r) { return finite(r.lo) ? Math.max(0, (r.med - r.lo) * unit.scale) : 0; }) },
        hovertext: ok.map(function (r) { return facts(r, ["run " + esc(r.run) + " (" + esc(RUN_INFO[r.run].started) + ")"]); }), hoverinfo: "text" };
    });
    const layout = baseLayout(narrow() ? 240 : 220);
    layout.xaxis.type = "category";
    // room left of the first run, so its two-line date never meets the lowest y tick on a phone
    const runs = Math.max.apply(null, data.map(function (t) { return t.x.length; }).concat([1]));
    layout.xaxis.range = [-0.8, runs - 0.2];
    layout.margin.b = 64;  // two-line dates and the axis title
    layout.xaxis.title = { text: "run (oldest → newest)" };
    layout.yaxis.title = { text: "per call (" + unit.name + ")" };
    return { data: data, layout: layout };
  }
  const HISTORY_CHARTS = 8;
  // Only the newest steps are compared when the page is built (each is a full gate run); an
  // older one gets the command that judges it: the run picked in the run filter, or else the
  // step just before the oldest compared one.
  function olderSteps(entry) {
    const i = entry.runs.indexOf(state.run);
    const picked = i > 0 && !entry.pairs[entry.runs[i - 1] + "|" + state.run];
    const after = picked ? i : entry.older;
    const p = el("p", { class: "muted older-steps" }, (picked ? "Run " + runLabel(state.run) + " against the run before it is"
      : entry.older + (entry.older > 1 ? " older steps of these " + entry.runs.length + " runs are" : " older step is")) +
      " not compared on this page (each step is a full gate run); older steps: run ");
    const file = function (run) { return (RUN_INFO[run] || {}).file || run; };
    p.appendChild(el("code", null, "bench compare " + file(entry.runs[after - 1]) + " " + file(entry.runs[after])));
    return p;
  }
  function renderChanges() {
    const section = document.getElementById("changes");
    const box = section.querySelector(".changes-list");
    clearCharts(box);
    const entries = (DATA.changes || []).filter(function (e) { return !state.machine || e.machine === state.machine; });
    section.hidden = !entries.length;
    entries.forEach(function (entry) {
      const key = defaultPair(entry);
      const view = entry.pairs[key];
      const block = el("div", { class: "change-block", dataset: { machine: entry.machine, pair: key } });
      const head = el("h3", null, "On " + entry.machine + ": ");
      const select = el("select", { "aria-label": "runs compared on " + entry.machine });
      Object.keys(entry.pairs).forEach(function (k) {
        const p = entry.pairs[k];
        select.appendChild(el("option", { value: k }, runLabel(p.after) + " vs " + runLabel(p.before)));
      });
      select.value = key;
      select.addEventListener("change", function () { pairChoice[entry.machine] = select.value; renderChanges(); });
      head.appendChild(select);
      block.appendChild(head);
      if (entry.older) block.appendChild(olderSteps(entry));
      if (view.error) { block.appendChild(el("p", { class: "note" }, view.error)); box.appendChild(block); return; }
      block.appendChild(el("p", { class: "gate-headline" }, "bench compare's verdict: " + view.headline));
      (view.notes || []).forEach(function (n) { block.appendChild(el("p", { class: "note setting-note" }, n)); });
      const changed = view.cases.filter(function (c) { return CHANGE_TABLE.includes(c.verdict); });
      const rest = view.cases.filter(function (c) { return !CHANGE_TABLE.includes(c.verdict); });
      if (changed.length) block.appendChild(changeTable(changed));
      else block.appendChild(el("p", { class: "muted" }, "No case changed beyond the gate's bar."));
      if (rest.length) {
        const counts = {};
        rest.forEach(function (c) { counts[c.verdict] = (counts[c.verdict] || 0) + 1; });
        const d = el("details", { class: "unchanged" });
        d.appendChild(el("summary", null, Object.keys(counts).map(function (v) { return counts[v] + " " + v; }).join(" · ") +
          (counts.insufficient ? " (insufficient: one process per case in a run gives the gate no between-process spread; the ratio of medians is shown, with no verdict)" : "")));
        d.addEventListener("toggle", function () { if (d.open && d.children.length === 1) d.appendChild(changeTable(rest)); });
        block.appendChild(d);
      }
      box.appendChild(block);
      if (entry.runs.length >= 3) {
        const charts = el("div", { class: "charts history-charts" });
        block.appendChild(charts);
        const picked = changed.slice(0, HISTORY_CHARTS);
        picked.forEach(function (c) {
          const rows = historyRows(entry.machine, c.framework, c.workload, c.params, c.dtype, c.mode, c.timing);
          if (rows.length < 2) return;
          addChart(charts, c.framework + " · " + c.workload + " · " + c.case + " · " + c.dtype + (c.mode !== "eager" ? " · " + c.mode : ""),
            "its median in each run of this machine, with the run's interval (" + c.verdict + " in the comparison above)",
            function () { return historyChart([{ name: c.framework, framework: c.framework, rows: rows }]); }, "history");
        });
        if (changed.length > HISTORY_CHARTS) charts.appendChild(el("p", { class: "muted" }, (changed.length - HISTORY_CHARTS) + " more changed cases: click a case in the matrix for its history."));
      }
    });
  }

  // -- drill-in: one case, every framework's samples and timings ---------------------------
  function renderDetail() {
    const box = DETAIL;
    clearCharts(box);
    const g = GROUP_BY_ID[state.case] || (BEST || []).find(function (b) { return b.id === state.case; });
    if (!g) { box.hidden = true; return; }
    box.hidden = false;
    // Open under the clicked case's table, not below the whole matrix.
    const line = document.querySelector('#matrix tr[data-group="' + g.id + '"]');
    const anchor = line ? line.closest(".table-wrap") : document.getElementById("answer");
    if (line && anchor.nextSibling !== box) anchor.after(box);
    else if (!line && box.previousElementSibling !== anchor) anchor.after(box);
    const head = el("h2");
    head.appendChild(document.createTextNode(g.workload + " · " + g.case + " "));
    head.appendChild(badge(g.dtype, "b-dtype"));
    head.appendChild(badge(g.mode, "b-mode"));
    if (g.timing) head.appendChild(badge(g.timing, "b-timing"));
    box.appendChild(head);
    box.appendChild(el("p", { class: "muted params" }, g.params + " · " + g.machine));
    const close = el("button", { type: "button", class: "close" }, "close ✕");
    close.addEventListener("click", function () {
      const line = document.querySelector('#matrix tr[data-group="' + state.case + '"]');
      state.case = ""; writeHash(); renderDetail();
      (line || document.getElementById("answer")).scrollIntoView({ block: "center" });
    });
    box.appendChild(close);
    const rows = Object.keys(g.cells).sort().map(function (fw) { return ROWS[g.cells[fw].row]; });
    const okRows = rows.filter(function (r) { return r.status === "ok"; });
    box.appendChild(factsTable(rows, g));
    const charts = el("div", { class: "charts detail-charts" });
    box.appendChild(charts);
    if (!okRows.length) { charts.appendChild(el("p", { class: "empty" }, "No framework produced a timing for this case.")); return; }
    const sampleRows = okRows.filter(function (r) { return r.lat_samples.length || r.q_samples.length || r.samples.length || r.dev_samples.length; });
    if (sampleRows.length) {
      addChart(charts, "Samples per call", "every timed sample, by timing kind (violin with its box); queued samples are per call (sample ÷ k)",
        function () { return samplesViolin(sampleRows); }, "samples");
    }
    addChart(charts, "Latency vs queued vs device time", "medians per call with 95% intervals; dispatch overhead = latency − queued",
      function () { return timingBars(okRows); }, "timings");
    const firsts = okRows.filter(function (r) { return finite(r.first); });
    if (firsts.length) {
      addChart(charts, "First-call time", "compilation, tracing and kernel JIT, measured apart and excluded from the samples; the steady-state median beside it",
        function () { return firstCallBars(firsts); }, "first-call");
    }
    const curves = okRows.filter(function (r) { return r.curve.length > 1; });
    if (curves.length) {
      addChart(charts, "Queued time against queue depth k", "per-call time for k calls between barriers; the queued figure is the plateau",
        function () { return queueCurves(curves); }, "queue-curve");
    }
    if ((RUNS[g.machine] || []).length >= 3) {
      const series = okRows.map(function (r) {
        return { name: r.framework, framework: r.framework, rows: historyRows(g.machine, r.framework, r.workload, r.params, r.dtype, r.mode, r.timing) };
      }).filter(function (x) { return x.rows.length > 1; });
      if (series.length) addChart(charts, "This case in every run of " + shortMachine(g.machine), "each framework's median per run, oldest → newest, with its interval",
        function () { return historyChart(series); }, "history");
    }
  }
  function factsTable(rows, g) {
    const wrap = el("div", { class: "table-wrap" });
    const table = el("table", { class: "facts-table" });
    // the note (why a case did not run) comes second, where it is seen; long texts wrap (report.css)
    const head = ["framework", "note", "mode · implementation", "figure", "× best (95% CI)", "latency", "queued", "device", "dispatch overhead", "first call", "samples", "processes", "run", "precision", "checks", "versions"];
    const tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    table.appendChild(el("thead")).appendChild(tr);
    const tbody = table.appendChild(el("tbody"));
    rows.forEach(function (r) {
      const c = g.cells[r.framework];
      const o = overhead(r);
      const spec = WORKLOADS[r.workload];
      const figures = spec ? (spec.headline || []).map(function (j) { return measureText(spec, r, j, spec.headline.length > 1); }).filter(Boolean) : [];
      const cells = [
        r.framework,
        r.status !== "ok" ? r.status + ": " + r.reason : (r.not_ranked ? "not compared: " + r.not_ranked : o.note),
        r.mode + " · " + r.impl,
        figures.length ? figures.join("; ") : "—",
        c && c.status === "ok" ? fmtRatio(c.ratio) + "× (" + fmtRatio(c.lo) + "–" + fmtRatio(c.hi) + ")" : "—",
        fmtTime(r.lat), fmtTime(r.q), finite(r.dev) ? fmtTime(r.dev) : "—",
        finite(o.value) ? fmtTime(o.value) + (o.note ? " *" : "") : "—",
        fmtTime(r.first), r.status === "ok" ? sig(r.n) + (finite(r.k) ? " (k=" + sig(r.k) + ")" : "") : "—",
        finite(r.processes) ? String(r.processes) : "1", runLabel(r.run),
        r.precision || "—", checksText(r) || "—", r.versions || r.version,
      ];
      const line = el("tr", { dataset: { status: r.status } });
      cells.forEach(function (text, j) {
        const td = el("td", { class: "col-" + head[j].split(" ")[0] }, text);
        if (j === 0) td.prepend(el("span", { class: "fw-dot", style: "background:" + COLOURS[r.framework] }));
        line.appendChild(td);
      });
      tbody.appendChild(line);
    });
    wrap.appendChild(table);
    return wrap;
  }
  function samplesViolin(rows) {
    const kinds = [["latency", "lat_samples"], ["queued", "q_samples"], ["device", "dev_samples"]];
    const all = [];
    rows.forEach(function (r) {
      kinds.forEach(function (k) { r[k[1]].forEach(function (v) { all.push(v); }); });
      r.samples.forEach(function (v) { all.push(v); });
    });
    const unit = timeUnit(all);
    const data = [];
    kinds.forEach(function (k) {
      const xs = [], ys = [];
      rows.forEach(function (r) {
        let samples = r[k[1]];
        if (!samples.length && r.samples.length && r.timing === k[0]) samples = r.samples;
        samples.forEach(function (v) { xs.push(esc(r.framework)); ys.push(v * unit.scale); });
      });
      if (!ys.length) return;
      data.push({ type: "violin", name: k[0], x: xs, y: ys, legendgroup: k[0], scalegroup: k[0],
        line: { color: KIND_COLOURS[k[0]], width: 1 }, fillcolor: KIND_COLOURS[k[0]], opacity: 0.55,
        box: { visible: true }, meanline: { visible: false }, points: false, spanmode: "hard",
        hoveron: "violins", hoverinfo: "y+name" });
    });
    const layout = baseLayout(300);
    layout.violinmode = "group";
    layout.yaxis.title = { text: "time per call (" + unit.name + ")" };
    if (wantsLog(all, 4)) logAxis(layout.yaxis, all.map(function (v) { return v * unit.scale; }));
    return { data: data, layout: layout };
  }
  function timingBars(rows) {
    const unit = timeUnit(rows.map(function (r) { return Math.max(r.lat || 0, r.q || 0, r.dev || 0); }));
    const x = rows.map(function (r) { return esc(r.framework); });
    const notes = [];
    function series(name, get, lo, hi) {
      const ys = rows.map(function (r) { return finite(get(r)) ? get(r) * unit.scale : null; });
      if (!ys.some(finite)) return null;
      const t = { type: "bar", name: name, x: x, y: ys, marker: { color: KIND_COLOURS[name.split(" ")[0]] },
        hovertext: rows.map(function (r) { return facts(r, [esc(name) + ": " + fmtTime(get(r))]); }), hoverinfo: "text" };
      if (lo) t.error_y = { type: "data", symmetric: false, thickness: 1, width: 3, color: "#333",
        array: rows.map(function (r) { return finite(hi(r)) && finite(get(r)) ? Math.max(0, (hi(r) - get(r)) * unit.scale) : 0; }),
        arrayminus: rows.map(function (r) { return finite(lo(r)) && finite(get(r)) ? Math.max(0, (get(r) - lo(r)) * unit.scale) : 0; }) };
      return t;
    }
    const over = rows.map(overhead);
    rows.forEach(function (r, j) { if (over[j].note) notes.push(r.framework + ": dispatch overhead " + over[j].note + "."); });
    if (!rows.some(function (r) { return finite(r.dev); })) notes.push("No device time: none of these rows carries one (it needs device events, e.g. CUDA events).");
    const data = [
      series("latency", function (r) { return r.lat; }, function (r) { return r.lat_lo; }, function (r) { return r.lat_hi; }),
      series("queued", function (r) { return r.q; }, function (r) { return r.q_lo; }, function (r) { return r.q_hi; }),
      series("device", function (r) { return r.dev; }, function (r) { return r.dev_lo; }, function (r) { return r.dev_hi; }),
      series("overhead (latency − queued)", function (r) { return overhead(r).value; }),
    ].filter(Boolean);
    const layout = baseLayout(300);
    layout.barmode = "group";
    layout.yaxis.title = { text: "per call (" + unit.name + ")" };
    return { data: data, layout: layout, notes: notes };
  }
  function firstCallBars(rows) {
    const unit = timeUnit(rows.map(function (r) { return r.first; }));
    const x = rows.map(function (r) { return esc(r.framework); });
    const values = rows.map(function (r) { return r.first; }).concat(rows.map(function (r) { return r.med; }));
    const layout = baseLayout(260);
    layout.barmode = "group";
    layout.yaxis.title = { text: unit.name };
    if (wantsLog(values)) logAxis(layout.yaxis, values.map(function (v) { return v * unit.scale; }));
    return { layout: layout, data: [
      { type: "bar", name: "first call", x: x, y: rows.map(function (r) { return r.first * unit.scale; }), marker: { color: KIND_COLOURS.first },
        hovertext: rows.map(function (r) { return facts(r); }), hoverinfo: "text" },
      { type: "bar", name: "steady-state median", x: x, y: rows.map(function (r) { return finite(r.med) ? r.med * unit.scale : null; }),
        marker: { color: KIND_COLOURS.queued }, hovertext: rows.map(function (r) { return facts(r); }), hoverinfo: "text" },
    ] };
  }
  function queueCurves(rows) {
    const all = [];
    rows.forEach(function (r) { r.curve.forEach(function (p) { all.push(p[1]); }); });
    const unit = timeUnit(all);
    const layout = baseLayout(300);
    const ks = [];
    rows.forEach(function (r) { r.curve.forEach(function (p) { ks.push(p[0]); }); });
    logAxis(layout.xaxis, ks);
    layout.xaxis.title = { text: "calls between barriers (k)" };
    layout.yaxis.title = { text: "per call (" + unit.name + ")" };
    if (wantsLog(all)) logAxis(layout.yaxis, all.map(function (v) { return v * unit.scale; }));
    return { layout: layout, data: rows.map(function (r) {
      return { type: "scatter", mode: "lines+markers", name: esc(r.framework), line: { color: COLOURS[r.framework] },
        x: r.curve.map(function (p) { return p[0]; }), y: r.curve.map(function (p) { return p[1] * unit.scale; }),
        hovertext: r.curve.map(function (p) { return esc(r.framework) + " k=" + sig(p[0]) + ": " + fmtTime(p[1]) + " per call"; }), hoverinfo: "text" };
    }) };
  }

  // -- per workload -------------------------------------------------------------------------
  function renderWorkloads() {
    document.querySelectorAll("section.workload").forEach(function (section) {
      const box = section.querySelector(".charts");
      clearCharts(box);
      const w = WORKLOADS[section.dataset.workload];
      const all = ROWS.filter(function (r) { return r.workload === w.name && rowMatches(r); });
      const drawn = all.filter(ranked);
      const machines = [];
      drawn.forEach(function (r) { if (!machines.includes(r.machine)) machines.push(r.machine); });
      if (!drawn.length) box.appendChild(el("p", { class: "empty" }, "No comparable rows match these filters."));
      machines.forEach(function (machine) {
        const rows = drawn.filter(function (r) { return r.machine === machine; });
        const where = machines.length > 1 || DATA.machines.length > 1 ? " · " + machine : "";
        w.measures.forEach(function (m, j) {
          const rowsM = rows.filter(function (r) { return r.measures[j] && finite(r.measures[j][0]); });
          if (!rowsM.length) return;
          const bound = boundTrace(rowsM, j, m);
          addChart(box, m.name + " (" + m.unit + ")" + where,
            (m.higher ? "higher is better" : "lower is better") + (m.ci ? "; bars: 95% interval of the median" : "; measured once per case by the adapter: no interval") +
            (bound ? "; ┃ marks the memory-bandwidth bound (every weight read once per token)" : ""),
            function () {
              return barChart(rowsM, function (r) { const v = r.measures[j]; return [v[0], v[1], v[2], boundNote(r, j, m)]; }, m.unit,
                { name: m.name, extra: bound ? [bound()] : [], scaleValues: rowsM.map(function (r) { return boundOf(r, j, m); }) });
            },
            "measure");
        });
        const withSamples = rows.filter(function (r) { return (r.timing === "latency" ? r.lat_samples : r.q_samples).length || r.samples.length; });
        const mem = memoryRows(rows);
        // The distributions and memory fold under one summary per machine, drawn when opened:
        // half of a large page's charts, and the drill-in shows a case's samples anyway.
        let more = box;
        if (withSamples.length || mem) {
          more = el("details", { class: "more-charts" });
          more.appendChild(el("summary", null, [withSamples.length ? "sample distributions" : "", mem ? mem.title.toLowerCase() : ""]
            .filter(Boolean).join(" and ") + where));
          box.appendChild(more);
        }
        if (withSamples.length) {
          addChart(more, "Sample distribution" + where, "per-call time of every sample at the headline timing; click a case in the matrix for latency, queued and device time",
            function () { return samplesBox(withSamples); }, "samples");
        }
        if (mem) {
          addChart(more, mem.title + where, mem.caption,
            function () { return barChart(mem.rows, function (r) { return [mem.get(r) / 2 ** 20, NaN, NaN]; }, "MiB", { name: mem.title, log: false }); },
            "memory");
        }
      });
      const notCompared = all.filter(function (r) { return r.status === "ok" && r.not_ranked; });
      if (notCompared.length) {
        const d = el("details", { class: "not-compared" });
        d.appendChild(el("summary", null, notCompared.length + " row(s) ran but are not compared (like-with-like rule)"));
        const ul = el("ul");
        notCompared.forEach(function (r) { ul.appendChild(el("li", null, r.framework + " · " + r.case + " · " + r.dtype + " · " + r.mode + " on " + r.machine + ": " + r.not_ranked)); });
        d.appendChild(ul);
        box.appendChild(d);
      }
    });
  }
  // LLM decode reads every weight once per token: tokens/s ≤ batch × bandwidth / bytes per step.
  function boundOf(r, j, m) {
    if (!/tokens_per_s$/.test(m.key) || !/^(tg|decode)/.test(m.key)) return NaN;
    const roofs = roofsFor(r);
    if (!roofs || !roofs.bandwidth || !finite(r.bytes) || !finite(r.med)) return NaN;
    const decode = r.measures[WORKLOADS[r.workload].measures.findIndex(function (x) { return x.key === "decode_tokens_per_s"; })];
    const perStep = decode && finite(decode[0]) ? decode[0] * r.med : NaN;  // tokens per timed step (= batch)
    return finite(perStep) ? perStep * roofs.bandwidth.value / r.bytes : NaN;
  }
  function boundNote(r, j, m) {
    const b = boundOf(r, j, m);
    if (!finite(b)) return [];
    return ["bandwidth bound " + sig(b) + " tokens/s (" + sig(100 * r.measures[j][0] / b) + "% of it; " + esc(roofsFor(r).bandwidth.source) + ")"];
  }
  function boundTrace(rows, j, m) {
    const pts = rows.filter(function (r) { return finite(boundOf(r, j, m)); });
    if (!pts.length) return null;
    return function () {
      return { type: "scatter", mode: "markers", name: "bandwidth bound", marker: { symbol: "line-ns-open", size: 16, color: "#111", line: { width: 2 } },
        x: pts.map(function (r) { return boundOf(r, j, m); }), y: pts.map(function (r) { return categoryLabel(categoryParts(r)); }),
        hovertext: pts.map(function (r) { return boundNote(r, j, m)[0]; }), hoverinfo: "text" };
    };
  }
  function samplesBox(rows) {
    const all = [];
    rows.forEach(function (r) { sampleList(r).forEach(function (v) { all.push(v); }); });
    const unit = timeUnit(all);
    const byFw = {};
    rows.forEach(function (r) { (byFw[r.framework] = byFw[r.framework] || []).push(r); });
    const cats = [];
    rows.forEach(function (r) { const c = categoryLabel(categoryParts(r)); if (!cats.includes(c)) cats.push(c); });
    const data = Object.keys(byFw).sort().map(function (fw) {
      const xs = [], ys = [];
      byFw[fw].forEach(function (r) {
        const c = categoryLabel(categoryParts(r));
        sampleList(r).forEach(function (v) { xs.push(v * unit.scale); ys.push(c); });
      });
      return { type: "box", orientation: "h", name: esc(fw), x: xs, y: ys, marker: { color: COLOURS[fw] }, line: { width: 1 },
        boxpoints: false, hoverinfo: "x" };
    });
    const traces = data.length;
    const layout = categoryLayout(cats, traces);
    layout.boxmode = "group";
    layout.xaxis.title = { text: "time per call (" + unit.name + ")" };
    if (wantsLog(all, 4)) logAxis(layout.xaxis, all.map(function (v) { return v * unit.scale; }));
    return { data: data, layout: layout };
  }
  function sampleList(r) {
    const own = r.timing === "latency" ? r.lat_samples : r.q_samples;
    return own.length ? own : r.samples;
  }
  function memoryRows(rows) {
    const dev = rows.filter(function (r) { return finite(r.peak_dev) && r.peak_dev > 0; });
    if (dev.length) return { rows: dev, get: function (r) { return r.peak_dev; }, title: "Peak device memory",
      caption: "the framework's own allocator counter during the case" + (dev.length < rows.length ? "; rows without a counter are left out" : "") };
    const rss = rows.filter(function (r) { return finite(r.peak_rss) && r.peak_rss > 0; });
    if (rss.length) return { rows: rss, get: function (r) { return r.peak_rss; }, title: "Peak process memory (RSS)",
      caption: "no device counter on this backend: the worker process's peak resident set, framework and runtime included" };
    return null;
  }

  // -- machines side by side ----------------------------------------------------------------
  function renderMachines() {
    const section = document.getElementById("compare-machines");
    const box = section.querySelector(".charts");
    clearCharts(box);
    const groups = visibleGroups();
    const machines = [];
    groups.forEach(function (g) { if (!machines.includes(g.machine)) machines.push(g.machine); });
    section.hidden = machines.length < 2;
    if (machines.length < 2) return;
    // (1) each framework's standing on each machine: geometric mean of × best over the cases it ran
    const standing = [];
    groups.forEach(function (g) {
      for (const fw in g.cells) {
        const c = g.cells[fw];
        if (c.status !== "ok") continue;
        let s = standing.find(function (x) { return x.machine === g.machine && x.workload === g.workload && x.fw === fw; });
        if (!s) { s = { machine: g.machine, workload: g.workload, fw: fw, logs: [] }; standing.push(s); }
        s.logs.push(Math.log(c.ratio));
      }
    });
    addChart(box, "Each framework's standing, per machine and workload",
      "geometric mean over the cases it ran of its time relative to that case's fastest on the same machine (1 = always fastest): " +
      "normalised within each machine, so a Mac, a CUDA box and a CPU sit side by side",
      function () {
        const cats = [];
        standing.forEach(function (s) { const c = categoryLabel([s.workload, shortMachine(s.machine)]); if (!cats.includes(c)) cats.push(c); });
        const fws = DATA.frameworks.filter(function (fw) { return standing.some(function (s) { return s.fw === fw; }); });
        const data = fws.map(function (fw) {
          const mine = standing.filter(function (s) { return s.fw === fw; });
          return { type: "scatter", mode: "markers", name: esc(fw), marker: { color: COLOURS[fw], size: 10, line: { color: "#fff", width: 1 } },
            x: mine.map(function (s) { return Math.exp(s.logs.reduce(function (a, b) { return a + b; }, 0) / s.logs.length); }),
            y: mine.map(function (s) { return categoryLabel([s.workload, shortMachine(s.machine)]); }),
            hovertext: mine.map(function (s) {
              return "<b>" + esc(fw) + "</b> on " + esc(s.machine) + "<br>" + esc(s.workload) + ": " +
                sig(Math.exp(s.logs.reduce(function (a, b) { return a + b; }, 0) / s.logs.length)) + "× the fastest (geometric mean over " + s.logs.length + " case(s))";
            }), hoverinfo: "text" };
        });
        const layout = categoryLayout(cats, 1, fws.length);
        layout.xaxis.title = { text: "× the fastest's time (1 = fastest)" };
        const xs = [1];
        data.forEach(function (t) { t.x.forEach(function (v) { xs.push(v); }); });
        logAxis(layout.xaxis, xs);
        return { data: data, layout: layout };
      }, "standing");
    // (2) identical cases on several machines: the best framework's figure, relative to the fastest machine
    const byKey = {};
    groups.forEach(function (g) {
      const best = Object.keys(g.cells).filter(function (fw) { return g.cells[fw].status === "ok" && g.cells[fw].ratio === 1; })[0];
      if (!best) return;
      const key = [g.workload, g.params, g.dtype, g.timing, g.mode].join("\u0000");
      (byKey[key] = byKey[key] || []).push(ROWS[g.cells[best].row]);
    });
    const shared = Object.keys(byKey).filter(function (k) { return byKey[k].length > 1; });
    if (!shared.length) {
      box.appendChild(el("p", { class: "note" }, "No case ran with the same parameters, dtype, timing and mode on more than one machine, " +
        "so machines are compared only by the normalised standing above."));
      return;
    }
    addChart(box, "The same case on several machines", "the fastest framework's time on each machine, relative to the fastest machine (1 = fastest); hover for the figure",
      function () {
        const rows = [];
        shared.forEach(function (k) {
          const fastest = Math.min.apply(null, byKey[k].map(function (r) { return r.med; }));
          byKey[k].forEach(function (r) { rows.push({ r: r, rel: r.med / fastest }); });
        });
        const cats = [];
        rows.forEach(function (x) { const c = categoryLabel([x.r.workload].concat(categoryParts(x.r))); if (!cats.includes(c)) cats.push(c); });
        const data = machines.map(function (m, i) {
          const mine = rows.filter(function (x) { return x.r.machine === m; });
          return { type: "bar", orientation: "h", name: esc(m), marker: { color: MACHINE_COLOURS[i % MACHINE_COLOURS.length] },
            x: mine.map(function (x) { return x.rel; }), y: mine.map(function (x) { return categoryLabel([x.r.workload].concat(categoryParts(x.r))); }),
            hovertext: mine.map(function (x) { return facts(x.r, [sig(x.rel) + "× the fastest machine's time"]); }), hoverinfo: "text" };
        });
        const layout = categoryLayout(cats, machines.length);
        layout.barmode = "group";
        layout.margin.b = 36;  // the caption names the axis: a title here was cut on a phone
        const rels = rows.map(function (x) { return x.rel; });
        if (wantsLog(rels)) logAxis(layout.xaxis, rels);
        return { data: data, layout: layout };
      }, "machines");
  }

  // -- roofline and loss ----------------------------------------------------------------------
  function renderRoofline() {
    const section = document.getElementById("roofline");
    const box = section.querySelector(".charts");
    clearCharts(box);
    const list = section.querySelector(".roofs");
    list.replaceChildren();
    let any = false;
    DATA.roofs.forEach(function (roofs) {
      if (state.machine && roofs.machine !== state.machine) return;
      const pts = ROWS.filter(function (r) {
        return ranked(r) && rowMatches(r) && r.machine === roofs.machine && r.backend === roofs.backend && finite(r.intensity) && finite(r.fps) && r.fps > 0;
      });
      if (!pts.length) return;
      any = true;
      list.appendChild(el("li", null, roofs.text));
      addChart(box, roofs.device + (DATA.machines.length > 1 ? " · " + roofs.machine : ""), "each point one case at its headline timing; hover for its facts",
        function () { return rooflinePlot(roofs, pts); }, "roofline");
    });
    section.hidden = !any;
  }
  const DTYPE_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star"];
  function rooflinePlot(roofs, pts) {
    const xs = pts.map(function (r) { return r.intensity; });
    let lo = Math.min.apply(null, xs) / 2, hi = Math.max.apply(null, xs) * 2;
    const dtypes = [];
    pts.forEach(function (r) { if (!dtypes.includes(r.dtype)) dtypes.push(r.dtype); });
    const data = [];
    const dashes = ["solid", "dash", "dot", "dashdot"];
    Object.keys(roofs.compute).forEach(function (dtype, k) {
      const peak = roofs.compute[dtype].value;
      if (roofs.bandwidth) { const ridge = peak / roofs.bandwidth.value; lo = Math.min(lo, ridge / 2); hi = Math.max(hi, ridge * 2); }
    });
    Object.keys(roofs.compute).forEach(function (dtype, k) {
      const peak = roofs.compute[dtype].value;
      const gx = [], gy = [];
      for (let i = 0; i <= 60; i++) {
        const x = lo * Math.pow(hi / lo, i / 60);
        gx.push(x);
        gy.push((roofs.bandwidth ? Math.min(peak, roofs.bandwidth.value * x) : peak) / 1e12);
      }
      data.push({ type: "scatter", mode: "lines", name: esc(dtype) + " roof", x: gx, y: gy, line: { color: "#555", width: 1.2, dash: dashes[k % 4] },
        hovertext: gx.map(function () { return esc(dtype) + " roof: " + sig(peak / 1e12) + " TFLOP/s (" + esc(roofs.compute[dtype].source) + ")" +
          (roofs.bandwidth ? "<br>bandwidth " + sig(roofs.bandwidth.value / 1e9) + " GB/s (" + esc(roofs.bandwidth.source) + ")" : ""); }), hoverinfo: "text" });
    });
    DATA.frameworks.forEach(function (fw) {
      const mine = pts.filter(function (r) { return r.framework === fw; });
      if (!mine.length) return;
      data.push({ type: "scatter", mode: "markers", name: esc(fw), x: mine.map(function (r) { return r.intensity; }), y: mine.map(function (r) { return r.fps / 1e12; }),
        marker: { color: COLOURS[fw], size: 9, line: { color: "#fff", width: 0.5 }, symbol: mine.map(function (r) { return DTYPE_SYMBOLS[dtypes.indexOf(r.dtype) % DTYPE_SYMBOLS.length]; }) },
        hovertext: mine.map(function (r) { return facts(r, [sig(r.fps / 1e12) + " TFLOP/s at " + sig(r.intensity) + " FLOP/byte"]); }), hoverinfo: "text" });
    });
    const layout = baseLayout(narrow() ? 340 : 420);
    logAxis(layout.xaxis, [lo, hi]);
    const ys = pts.map(function (r) { return r.fps / 1e12; });
    Object.keys(roofs.compute).forEach(function (d) { ys.push(roofs.compute[d].value / 1e12); });
    if (roofs.bandwidth) ys.push(roofs.bandwidth.value * lo / 1e12);
    logAxis(layout.yaxis, ys);
    layout.xaxis.title = { text: "arithmetic intensity (FLOP/byte)" };
    layout.yaxis.title = { text: "TFLOP/s" };
    return { data: data, layout: layout, notes: dtypes.length > 1 ? ["Marker shape by dtype: " + dtypes.map(function (d, i) { return d + " " + DTYPE_SYMBOLS[i % DTYPE_SYMBOLS.length]; }).join(", ") + "."] : [] };
  }
  function renderLoss() {
    const section = document.getElementById("training");
    const box = section.querySelector(".charts");
    clearCharts(box);
    const rows = ROWS.filter(function (r) { return r.loss.length > 1 && rowMatches(r) && r.status === "ok"; });
    section.hidden = !rows.length;
    const keys = [];
    rows.forEach(function (r) { const k = r.machine + "\u0000" + r.workload; if (!keys.includes(k)) keys.push(k); });
    keys.forEach(function (key) {
      const [machine, workload] = key.split("\u0000");
      const mine = rows.filter(function (r) { return r.machine === machine && r.workload === workload; });
      addChart(box, workload + (DATA.machines.length > 1 ? " · " + machine : ""), "training loss per step as each framework reported it; line style by case",
        function () {
          const cases = [];
          mine.forEach(function (r) { if (!cases.includes(r.case + r.dtype + r.mode)) cases.push(r.case + r.dtype + r.mode); });
          const dashes = ["solid", "dash", "dot", "dashdot", "longdash"];
          const data = mine.map(function (r) {
            return { type: "scatter", mode: "lines", name: esc(r.framework) + " · " + esc(r.case) + " · " + esc(r.dtype) + (r.mode !== "eager" ? " · " + esc(r.mode) : ""),
              x: r.loss.map(function (_, i) { return i; }), y: r.loss, line: { color: COLOURS[r.framework], width: 1.6, dash: dashes[cases.indexOf(r.case + r.dtype + r.mode) % 5] },
              hovertext: r.loss.map(function (v, i) { return facts(r, ["step " + i + ": loss " + sig(v, 4)]); }), hoverinfo: "text" };
          });
          const layout = baseLayout(narrow() ? 360 : 340);
          layout.xaxis.title = { text: "step" };
          layout.yaxis.title = { text: "training loss" };
          layout.legend.font = { size: 10 };
          return { data: data, layout: layout };
        }, "loss");
    });
  }

  // -- the table of every row ---------------------------------------------------------------
  const COLUMNS = [
    ["machine", function (r) { return r.machine; }],
    ["run", function (r) { return r.run; }],
    ["framework", function (r) { return r.framework; }],
    ["version", function (r) { return r.version; }],
    ["backend", function (r) { return r.backend; }],
    ["workload", function (r) { return r.workload; }],
    ["case", function (r) { return r.case; }, function (r) { return finite(r.flops) ? r.flops : 0; }],
    ["dtype", function (r) { return r.dtype; }],
    ["mode", function (r) { return r.mode; }],
    ["status", function (r) { return r.status; }],
    ["timing", function (r) { return r.timing; }],
    ["median", function (r) { return fmtTime(r.med); }, function (r) { return r.med; }],
    ["95% CI", function (r) { return finite(r.lo) ? fmtTime(r.lo) + " – " + fmtTime(r.hi) : "—"; }, function (r) { return r.lo; }],
    ["latency", function (r) { return fmtTime(r.lat); }, function (r) { return r.lat; }],
    ["queued", function (r) { return fmtTime(r.q); }, function (r) { return r.q; }],
    ["device", function (r) { return fmtTime(r.dev); }, function (r) { return r.dev; }],
    ["overhead", function (r) { const o = overhead(r); return finite(o.value) ? fmtTime(o.value) + (o.note ? " (noise)" : "") : "—"; }, function (r) { return overhead(r).value; }],
    ["first call", function (r) { return fmtTime(r.first); }, function (r) { return r.first; }],
    ["figure", function (r) { const w = WORKLOADS[r.workload]; const v = w && w.ranked != null ? r.measures[w.ranked] : null; return v && finite(v[0]) ? sig(v[0]) + " " + w.measures[w.ranked].unit : "—"; },
      function (r) { const w = WORKLOADS[r.workload]; const v = w && w.ranked != null ? r.measures[w.ranked] : null; return v ? v[0] : null; }],
    ["rank", function (r) { return r.rank == null ? "" : String(r.rank); }, function (r) { return r.rank; }],
    ["× best", function (r) { return finite(r.vs_best) ? r.vs_best.toFixed(2) + "×" : "—"; }, function (r) { return r.vs_best; }],
    ["precision", function (r) { return r.precision; }],
    ["max rel. err", function (r) { return finite(r.err) ? r.err.toExponential(1) : "—"; }, function (r) { return r.err; }],
    ["peak device", function (r) { return fmtBytes(r.peak_dev); }, function (r) { return r.peak_dev; }],
    ["peak RSS", function (r) { return fmtBytes(r.peak_rss); }, function (r) { return r.peak_rss; }],
    ["checks", function (r) { return checksText(r); }],
    ["note", function (r) { return r.status !== "ok" ? r.reason : r.not_ranked ? "not compared: " + r.not_ranked : ""; }],
  ];
  let tableRows = [];
  // The table is built when it comes near the viewport (or when the browser is idle):
  // 1,000 rows × 27 cells is most of the page's DOM, and nobody reads it first.
  let tableBuilt = false;
  function scheduleTable() {
    const section = document.getElementById("rows");
    const build = function () { if (!tableBuilt) { setUpTable(); filterTable(); } };
    if (observer) {
      const watch = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { watch.disconnect(); build(); }
      }, { rootMargin: "800px 0px" });
      watch.observe(section);
    }
    (window.requestIdleCallback || function (f) { return setTimeout(f, 200); })(build, { timeout: 3000 });
  }
  // The table holds every row of every run (the run is a column); the page's filters apply,
  // the run selector does not. Only the first TABLE_PAGE (100) matching rows are in the DOM (more on
  // request): sorting and filtering work on the data, so 1,000+ rows re-sort in one short task.
  const TABLE_PAGE = 100;
  let tableOrder = [];
  let tableMatched = [];
  let tableLimit = TABLE_PAGE;
  function rowElement(x) {
    if (x.tr) return x.tr;
    const r = x.r;
    const tr = el("tr", { class: ranked(r) ? "ranked" : "unranked", dataset: { status: r.status } });
    x.cells.forEach(function (text, j) {
      const td = el("td", null, text);
      if (COLUMNS[j][0] === "case") td.title = r.params;
      tr.appendChild(td);
    });
    x.tr = tr;
    return tr;
  }
  function setUpTable() {
    tableBuilt = true;
    const table = document.getElementById("all-rows");
    const headRow = el("tr");
    COLUMNS.forEach(function (c, col) {
      const th = el("th", { dataset: { col: String(col) } }, c[0]);
      th.addEventListener("click", function () { sortTable(col, th); });
      headRow.appendChild(th);
    });
    table.tHead.appendChild(headRow);
    tableRows = ROWS.map(function (r) {
      const cells = COLUMNS.map(function (c) { return c[1](r) || ""; });
      return { tr: null, r: r, cells: cells, text: cells.join(" ").toLowerCase() + " " + r.params.toLowerCase() };
    });
    tableOrder = tableRows.slice();
    const statuses = [];
    ROWS.forEach(function (r) { if (!statuses.includes(r.status)) statuses.push(r.status); });
    const select = document.getElementById("status-filter");
    statuses.forEach(function (s) { select.appendChild(el("option", { value: s }, s)); });
    select.value = state.status;
    const text = document.getElementById("row-filter");
    text.value = state.q;
    text.addEventListener("input", function () { state.q = text.value; writeHash(); filterTable(); });
    select.addEventListener("change", function () { state.status = select.value; writeHash(); filterTable(); });
    document.getElementById("rows-more").addEventListener("click", function () { tableLimit = Infinity; showTable(); });
  }
  function sortTable(col, th) {
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    th.parentNode.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const key = COLUMNS[col][2] || COLUMNS[col][1];
    // each row's key once (not once per comparison)
    const keyed = tableRows.map(function (x) {
      const v = key(x.r);
      return finite(v) ? { x: x, a: 0, n: v, t: "" }
        : { x: x, a: v === "" || v == null || typeof v === "number" ? 2 : 1, n: 0, t: String(v == null ? "" : v).toLowerCase() };
    });
    const sign = ascending ? 1 : -1;
    keyed.sort(function (p, q) {
      if (p.a !== q.a) return p.a < q.a ? -sign : sign;
      if (p.n !== q.n) return p.n < q.n ? -sign : sign;
      if (p.t !== q.t) return p.t < q.t ? -sign : sign;
      return 0;
    });
    tableOrder = keyed.map(function (k) { return k.x; });
    filterTable();
  }
  function filterTable() {
    if (!tableBuilt) return;
    const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    tableMatched = tableOrder.filter(function (x) {
      return matches(x.r, null, true) && (!state.status || x.r.status === state.status) && words.every(function (w) { return x.text.includes(w); });
    });
    showTable();
  }
  function showTable() {
    const shown = tableMatched.slice(0, tableLimit);
    document.getElementById("all-rows").tBodies[0].replaceChildren.apply(document.getElementById("all-rows").tBodies[0], shown.map(rowElement));
    const total = tableRows.length, n = tableMatched.length;
    document.getElementById("row-count").textContent = (n === total ? total + " rows" : n + " of " + total + " rows") +
      (shown.length < n ? ", first " + shown.length + " shown" : "");
    const more = document.getElementById("rows-more");
    more.hidden = shown.length >= n;
    more.textContent = "show all " + n;
  }

  // -- filters ------------------------------------------------------------------------------
  function setUpFilters() {
    const form = document.getElementById("filters");
    FILTERS.forEach(function (name) {
      const select = form.elements[name];
      if (name === "run") {
        Object.keys(RUNS).forEach(function (m) {
          RUNS[m].slice().reverse().forEach(function (run) {
            select.appendChild(el("option", { value: run.id }, shortMachine(m) + " · " + runLabel(run.id)));
          });
        });
        if (!Object.keys(RUNS).some(function (m) { return RUNS[m].length > 1; })) select.closest("label").hidden = true;
      } else {
        (DATA.filters[name] || []).forEach(function (v) { if (!Array.from(select.options).some(function (o) { return o.value === v; })) select.appendChild(el("option", { value: v }, v)); });
        if (name !== "mode" && (DATA.filters[name] || []).length < 2) select.closest("label").hidden = true;
      }
      select.value = state[name];
      if (select.value !== state[name]) state[name] = "";
      select.addEventListener("change", function () { state[name] = select.value; state.case = ""; writeHash(); renderAll(); });
    });
    form.addEventListener("reset", function () {
      setTimeout(function () { FILTERS.forEach(function (n) { state[n] = ""; }); state.case = ""; writeHash(); renderAll(); }, 0);
    });
    document.getElementById("matrix").addEventListener("click", function (event) {
      const button = event.target.closest("button[data-group]");
      if (!button) return;
      state.case = button.dataset.group;
      writeHash();
      renderDetail();
      DETAIL.scrollIntoView({ block: "start" });
    });
    // In-page links scroll instead of replacing the #fragment, which holds the view.
    document.addEventListener("click", function (event) {
      const a = event.target.closest("a[href^='#']");
      if (!a || a.getAttribute("href").includes("=")) return;
      const target = document.getElementById(a.getAttribute("href").slice(1));
      if (!target) return;
      event.preventDefault();
      target.scrollIntoView({ block: "start" });
    });
  }
  function renderAll() {
    updateShownRuns();
    renderStatus();
    renderChanges();
    renderFailures();
    renderMatrix();
    renderDetail();
    renderMachines();
    renderWorkloads();
    renderRoofline();
    renderLoss();
    filterTable();
    document.querySelectorAll("#nav a[data-needs]").forEach(function (a) {
      const target = document.getElementById(a.getAttribute("href").slice(1));
      a.hidden = !target || target.hidden;
    });
  }

  // -- self-test: every chart drawn, no overlapping text -------------------------------------
  function textBoxes(plot) {
    return Array.from(plot.querySelectorAll("svg text")).filter(function (t) {
      if (!t.textContent.trim() || t.closest(".hoverlayer")) return false;
      const style = getComputedStyle(t);
      return style.display !== "none" && style.visibility !== "hidden" && Number(style.opacity) !== 0;
    }).map(function (t) { return { text: t.textContent, box: t.getBoundingClientRect() }; })
      .filter(function (b) { return b.box.width > 0 && b.box.height > 0; });
  }
  // Text cut by the chart's edge (margins are set, not measured by plotly: see baseLayout).
  function clipped(plot) {
    const svg = plot.querySelector(".main-svg");
    if (!svg) return [];
    const frame = svg.getBoundingClientRect();
    return textBoxes(plot).filter(function (b) {
      return b.box.left < frame.left - 1 || b.box.right > frame.right + 1 || b.box.top < frame.top - 1 || b.box.bottom > frame.bottom + 1;
    }).map(function (b) { return b.text; });
  }
  function overlaps(plot) {
    const boxes = textBoxes(plot);
    const found = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i].box, b = boxes[j].box;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1) found.push([boxes[i].text, boxes[j].text]);
      }
    }
    return found;
  }
  // A bar chart's category holding two bars of one trace would stack them (their sum drawn):
  // every (trace, category) must hold at most one bar.
  function duplicateBars(plot) {
    const found = [];
    (plot.data || []).forEach(function (t) {
      if (t.type !== "bar") return;
      const cats = t.orientation === "h" ? t.y : t.x;
      const seen = {};
      (cats || []).forEach(function (c) { if (seen[c]) found.push(t.name + " @ " + c); seen[c] = true; });
    });
    return found;
  }
  function selftest() {
    if (!state.case) {
      // the case whose drill-in shows the most: several frameworks, and a queue curve if any has one
      const ok = function (x) { return Object.keys(x.cells).filter(function (fw) { return x.cells[fw].status === "ok"; }); };
      const curved = function (x) { return ok(x).some(function (fw) { return ROWS[x.cells[fw].row].curve.length > 1; }); };
      const g = GROUPS.find(function (x) { return ok(x).length > 1 && curved(x); }) ||
        GROUPS.find(function (x) { return ok(x).length > 1; }) || GROUPS[0];
      if (g) { state.case = g.id; renderDetail(); }
    }
    document.querySelectorAll("details.more-charts").forEach(function (d) { d.open = true; });
    return Promise.all(charts.map(draw)).then(function () {
      // every chart is drawn now: stamp it before the layout checks below (they read every
      // text's box, which is the checks' cost, not the page's)
      const drawnMs = Math.round(performance.now());
      const problems = [];
      const stacked = [];
      const cut = [];
      let drawn = 0;
      charts.forEach(function (c) {
        const svg = c.plot.querySelector(".main-svg");
        const traces = c.plot._fullData ? c.plot._fullData.length : 0;
        if (svg && traces > 0 && c.plot.dataset.rendered) drawn++;
        const title = c.plot.parentNode.querySelector("figcaption b").textContent;
        overlaps(c.plot).forEach(function (pair) { problems.push({ chart: title, texts: pair }); });
        duplicateBars(c.plot).forEach(function (d) { stacked.push({ chart: title, bar: d }); });
        clipped(c.plot).forEach(function (t) { cut.push({ chart: title, text: t }); });
      });
      root.dataset.reportStackedBars = String(stacked.length);
      root.dataset.reportCharts = String(drawn);
      root.dataset.reportChartsExpected = String(charts.length);
      root.dataset.reportOverlaps = String(problems.length);
      root.dataset.reportRendered = drawn === charts.length && charts.length > 0 ? "ok" : "missing-charts";
      root.dataset.reportSelftestMs = String(drawnMs);
      root.dataset.reportChecksMs = String(Math.round(performance.now()) - drawnMs);
      const out = document.getElementById("selftest");
      out.textContent = JSON.stringify({ charts: charts.length, drawn: drawn, overlaps: problems.slice(0, 50),
        matrixCells: document.querySelectorAll("#matrix td.cell").length, tableRows: tableRows.length, stacked: stacked.slice(0, 20), clipped: cut.slice(0, 20),
        tableShown: tableMatched.length,
        kinds: charts.map(function (c) { return c.plot.parentNode.dataset.kind; }),
        drawMs: charts.map(function (c) { return Math.round(c.ms || 0); }),
        state: { machine: state.machine, dtype: state.dtype, mode: state.mode, timing: state.timing, case: state.case },
        width: document.documentElement.clientWidth });
    });
  }

  function start() {
    const anchor = readHash();
    setUpFilters();
    renderAll();
    marks.drawn = Math.round(performance.now());
    if (state.selftest || state.q || state.status) { setUpTable(); filterTable(); } else scheduleTable();
    // Interactive: the matrix, table and filters are live and the charts in view are drawn.
    const visible = charts.filter(function (c) { const b = c.plot.getBoundingClientRect(); return b.top < window.innerHeight && b.bottom > 0; });
    Promise.all(visible.map(draw)).then(function () {
      root.dataset.reportInteractiveMs = String(Math.round(performance.now()));
      root.dataset.reportMarks = JSON.stringify(marks);
      if (anchor) { const t = document.getElementById(anchor); if (t) t.scrollIntoView(); }
      else if (state.case && !state.selftest) DETAIL.scrollIntoView();
      if (state.selftest) return selftest();
      root.dataset.reportRendered = "ok";
    }).catch(function (err) {
      root.dataset.reportErrors = String(Number(root.dataset.reportErrors || 0) + 1);
      root.dataset.reportLastError = String(err && err.message || err);
    });
    window.addEventListener("hashchange", function () {
      const a = readHash();
      if (a) return;
      const form = document.getElementById("filters");
      FILTERS.forEach(function (n) { form.elements[n].value = state[n]; });
      renderAll();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
