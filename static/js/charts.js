// Charts drawn with uPlot from JSON embedded in the page (json_script):
//   data-chart="histogram"  data-source=<id of {"edges": [...], "counts": [...]}>
//   data-chart="categories" data-source=<id of [{"label": ..., "count": ...}, ...]>
// Drawn on load and again whenever htmx swaps new content in.
(function () {
  "use strict";

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
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
        { label: "rows" },
      ],
      series: [
        {},
        { label: "rows", fill: "rgba(1, 114, 173, 0.55)", stroke: "rgb(1, 114, 173)", paths: uPlot.paths.bars({ size: [0.85, 60] }), points: { show: false } },
      ],
    };
    element.innerHTML = "";
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
        barsChart(element, data.map(function (d) { return d.label; }), data.map(function (d) { return d.count; }), "label");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
