// Charts drawn with uPlot from JSON embedded in the page (json_script):
//   data-chart="histogram"  data-source=<id of {"edges": [...], "counts": [...]}>
//   data-chart="categories" data-source=<id of [{"label": ..., "count": ...}, ...]>
// Drawn on load and again whenever htmx swaps new content in. Each chart is an
// image named by what it shows (role=img, aria-label), and counts of rows
// are whole: the rows axis ticks only at whole numbers.
(function () {
  "use strict";

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  // Whole increments only: uPlot's own would put ticks at 0.5 rows.
  const WHOLE_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000,
    10000, 20000, 25000, 50000, 100000, 200000, 250000, 500000, 1000000, 2000000, 5000000];

  function whole(value) { return Math.round(value).toLocaleString("en"); }

  function rows(count) { return whole(count) + (count === 1 ? " row" : " rows"); }

  // "Chart of tokens: 1,200 rows in 12 bars; the tallest, 100–120, has 340 rows."
  function describe(element, labels, counts, what) {
    const total = counts.reduce(function (sum, c) { return sum + c; }, 0);
    let top = 0;
    counts.forEach(function (c, i) { if (c > counts[top]) top = i; });
    const text = counts.length
      ? "Chart of " + what + ": " + rows(total) + " in " + whole(counts.length) +
        (counts.length === 1 ? " bar" : " bars") + "; the tallest, " + labels[top] + ", has " + rows(counts[top]) + "."
      : "Chart of " + what + ": no rows.";
    element.setAttribute("role", "img");
    element.setAttribute("aria-label", text);
  }

  function barsChart(element, labels, counts, xLabel) {
    const x = labels.map(function (_, i) { return i; });
    const width = Math.max(element.clientWidth, 280);
    const options = {
      width: width,
      height: 220,
      legend: { show: false },
      cursor: { points: { show: false } },
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [
        { label: xLabel || "", values: function (u, splits) { return splits.map(function (i) { return Number.isInteger(i) && labels[i] !== undefined ? labels[i] : ""; }); }, splits: function () { return thin(x, width); } },
        {
          label: "rows",
          incrs: WHOLE_INCREMENTS,
          values: function (u, splits) {
            const ticks = splits.map(function (v) { return Number.isInteger(v) ? whole(v) : ""; });
            // The ticks drawn on the canvas, readable (and checked) in the page.
            element.dataset.rowTicks = ticks.filter(Boolean).join(" ");
            return ticks;
          },
        },
      ],
      series: [
        {},
        { label: "rows", fill: "rgba(1, 114, 173, 0.55)", stroke: "rgb(1, 114, 173)", paths: uPlot.paths.bars({ size: [0.85, 60] }), points: { show: false } },
      ],
    };
    element.innerHTML = "";
    describe(element, labels, counts, xLabel || "rows");
    return new uPlot(options, [x, counts], element);
  }

  // At most ~8 tick labels so they do not overlap.
  function thin(x, width) {
    const step = Math.max(1, Math.ceil(x.length / Math.max(2, Math.floor(width / 90))));
    return x.filter(function (i) { return i % step === 0; });
  }

  function compact(value) {
    if (value >= 1000000) return (value / 1000000).toFixed(1) + "M";
    if (value >= 10000) return Math.round(value / 1000) + "k";
    if (value >= 1000) return (value / 1000).toFixed(1) + "k";
    return String(Math.round(value));
  }

  function draw(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      const data = readJSON(element.dataset.source);
      if (!data) return;
      if (element.dataset.chart === "histogram") {
        const labels = data.counts.map(function (_, i) { return compact(data.edges[i]) + "–" + compact(data.edges[i + 1]); });
        barsChart(element, labels, data.counts, element.dataset.xLabel);
      } else if (element.dataset.chart === "categories") {
        barsChart(element, data.map(function (d) { return d.label; }), data.map(function (d) { return d.count; }), element.dataset.xLabel || "label");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
