// The reward chart of a preference job (DPO, KTO): the reward margin (the
// chosen answers' reward minus the rejected ones') at each logged step and
// each evaluation, and the share of pairs whose chosen answer wins. It draws
// the points job_live.js follows over the job's socket: that script sends
// every point it holds in a "job:points" event after each change.
(function () {
  "use strict";

  const root = document.getElementById("job-live");
  const node = document.getElementById("reward-chart");
  if (!root || !node) return;
  let chart = null;

  function byId(id) { return document.getElementById(id); }
  // job_live.js's rounding (as Django's floatformat), loaded before this script.
  const fixed = jobLive.fixed;

  function margin(value) { return value === null || value === undefined ? "—" : fixed(value, 3); }
  function share(value) {
    return value === null || value === undefined ? "—" : fixed(100 * value, 0) + "%";
  }

  function series(points) {
    const trainMargin = new Map(), evalMargin = new Map(), accuracy = new Map();
    points.forEach(function (p) {
      if (p.reward_margin !== null && p.reward_margin !== undefined) {
        (p.kind === "eval" ? evalMargin : trainMargin).set(p.step, p.reward_margin);
      }
      if (p.preference_accuracy !== null && p.preference_accuracy !== undefined) {
        // Held-out figures win over the batch's own at the same step.
        if (p.kind === "eval" || !accuracy.has(p.step)) accuracy.set(p.step, p.preference_accuracy);
      }
    });
    const steps = Array.from(new Set([].concat(Array.from(trainMargin.keys()),
      Array.from(evalMargin.keys()), Array.from(accuracy.keys()))));
    steps.sort(function (a, b) { return a - b; });
    function column(map) { return steps.map(function (s) { return map.has(s) ? map.get(s) : null; }); }
    return [steps, column(trainMargin), column(evalMargin), column(accuracy)];
  }

  function latest(values) {
    for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return i;
    return -1;
  }

  function describe(data) {
    const steps = data[0];
    if (!steps.length) return "Reward chart: no points yet.";
    const parts = [];
    [[1, "reward margin"], [2, "validation reward margin"]].forEach(function (pair) {
      const values = data[pair[0]];
      const first = values.findIndex(function (v) { return v !== null; });
      const last = latest(values);
      if (first < 0) return;
      parts.push(first === last
        ? pair[1] + " " + margin(values[last]) + " at step " + steps[last]
        : pair[1] + " from " + margin(values[first]) + " to " + margin(values[last]) +
          " over steps " + steps[first] + " to " + steps[last]);
    });
    const acc = latest(data[3]);
    if (acc >= 0) parts.push("preference accuracy " + share(data[3][acc]) + " at step " + steps[acc]);
    return "Reward chart: " + parts.join("; ") + ".";
  }

  function figures(data) {
    // As the page's first render (jobs/views.py _rewards): the newest evaluation's, else the newest step's.
    const m = latest(data[2]) >= 0 ? data[2][latest(data[2])] : (latest(data[1]) >= 0 ? data[1][latest(data[1])] : null);
    const a = latest(data[3]) >= 0 ? data[3][latest(data[3])] : null;
    if (byId("job-reward-margin")) byId("job-reward-margin").textContent = margin(m);
    if (byId("job-preference-accuracy")) byId("job-preference-accuracy").textContent = share(a);
  }

  function draw(points) {
    const data = series(points);
    node.dataset.points = String(data[0].length);
    node.hidden = data[0].length === 0;
    const empty = byId("reward-chart-empty");
    if (empty) empty.hidden = data[0].length > 0;
    node.setAttribute("aria-label", describe(data));
    figures(data);
    if (typeof uPlot === "undefined" || !data[0].length) return;
    if (chart === null) {
      chart = new uPlot({
        width: Math.max(node.clientWidth, 280),
        height: 220,
        scales: { x: { time: false }, share: { range: [0, 1] } },
        axes: [
          { label: "step" },
          { label: "reward margin" },
          { side: 1, scale: "share", label: "preference accuracy", grid: { show: false },
            values: function (u, splits) { return splits.map(function (s) { return fixed(100 * s, 0) + "%"; }); } },
        ],
        series: [
          { label: "step" },
          { label: "reward margin", stroke: "rgb(1, 114, 173)", width: 2, spanGaps: true, points: { show: false }, value: function (u, v) { return margin(v); } },
          { label: "validation reward margin", stroke: "rgb(239, 108, 0)", width: 2, spanGaps: true, points: { show: true, size: 7 }, value: function (u, v) { return margin(v); } },
          { label: "preference accuracy", scale: "share", stroke: "rgb(46, 125, 50)", width: 2, dash: [6, 4], spanGaps: true, points: { show: false }, value: function (u, v) { return share(v); } },
        ],
      }, data, node);
    } else {
      chart.setData(data);
    }
  }

  root.addEventListener("job:points", function (event) { draw(event.detail); });
  window.addEventListener("resize", function () {
    if (chart) chart.setSize({ width: Math.max(node.clientWidth, 280), height: 220 });
  });
})();
