// metalbench report: sort and filter the table of every row; say when the page rendered.
// Inlined into index.html. Sets <html data-report-rendered="ok"> once every chart the
// page promised (body[data-expected-charts]) holds an SVG: the end-to-end test reads it.
(function () {
  "use strict";
  const root = document.documentElement;
  window.addEventListener("error", function (event) {
    root.dataset.reportErrors = String(Number(root.dataset.reportErrors || 0) + 1);
    root.dataset.reportLastError = String(event.message || "error");
  });

  function sortKey(cell) {
    const raw = cell.dataset.sort;
    const num = Number(raw);
    return raw !== "" && Number.isFinite(num) ? [0, num, ""] : [raw === "" ? 2 : 1, 0, (raw || "").toLowerCase()];
  }

  function compare(a, b) {
    for (let i = 0; i < 3; i++) {
      if (a[i] < b[i]) return -1;
      if (a[i] > b[i]) return 1;
    }
    return 0;
  }

  function setUpTable(table) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (th, col) {
      th.addEventListener("click", function () {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const sorted = rows.slice().sort(function (x, y) {
          const c = compare(sortKey(x.cells[col]), sortKey(y.cells[col]));
          return ascending ? c : -c;  // empty cells go last ascending, first descending
        });
        sorted.forEach(function (r) { body.appendChild(r); });
      });
    });

    const text = document.getElementById("row-filter");
    const status = document.getElementById("status-filter");
    const count = document.getElementById("row-count");
    const haystacks = rows.map(function (r) { return r.textContent.toLowerCase(); });
    function applyFilter() {
      const words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      rows.forEach(function (r, i) {
        const visible = (!status.value || r.dataset.status === status.value) &&
          words.every(function (w) { return haystacks[i].includes(w); });
        r.hidden = !visible;
        if (visible) shown++;
      });
      count.textContent = shown === rows.length ? rows.length + " rows" : shown + " of " + rows.length + " rows";
    }
    text.addEventListener("input", applyFilter);
    status.addEventListener("change", applyFilter);
  }

  function ready() {
    const table = document.getElementById("all-rows");
    if (table) setUpTable(table);
    const expected = Number(document.body.dataset.expectedCharts || 0);
    const drawn = document.querySelectorAll("figure.chart svg").length;
    root.dataset.reportCharts = String(drawn);
    root.dataset.reportRendered = drawn === expected ? "ok" : "missing-charts";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
