// The Compare page's loss chart (jobs/compare_views.py): every run's training
// loss (solid) and validation loss (dashed, dots) overlaid with uPlot, across
// steps, tokens seen or time, the loss axis linear or logarithmic.
//
// The curves come embedded in the page (#compare-data: per run its colour's
// place, its attempt, whether it is active, and [step, loss, tokens, elapsed]
// rows). The view is the form #compare-view: changing it redraws at once and
// writes the choice into the address (a shared link opens as it was seen);
// without the script the form asks the server for the same view.
// Each active run is followed over its job socket with the job page's
// protocol (jobs/consumers.py): it asks for the points after the last one
// drawn, then takes each as it is logged; points are kept by (kind, step), so
// a replay that overlaps adds nothing twice, and a rewind (a resumed attempt)
// drops the points past its step. It asks again every few seconds while the
// run is active, so a lost message is healed, and once more when it ends;
// then the socket closes. The chart is named by what it shows (role=img).
(function () {
  "use strict";

  const node = document.getElementById("compare-chart");
  const source = node && document.getElementById(node.dataset.source);
  if (!node || !source) return;

  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const RESYNC_MS = 10000;
  const X_COLUMN = { step: 0, tokens: 2, time: 3 };
  const X_WORDS = { step: "step", tokens: "tokens seen", time: "seconds" };
  // Steps, tokens and seconds tick at whole numbers only, never "12.5".
  const WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000,
    25000, 50000, 100000, 200000, 250000, 500000, 1000000, 2000000, 5000000, 10000000, 20000000,
    50000000, 100000000, 200000000, 500000000, 1000000000];
  const data = JSON.parse(source.textContent);
  const form = document.getElementById("compare-view");
  const empty = document.getElementById("compare-chart-empty");
  const view = { x: data.x, log: data.log };
  let chart = null;
  let drawing = false;

  const runs = data.runs.map(function (run) {
    const held = { train: new Map(), validation: new Map() };
    run.train.forEach(function (row) { held.train.set(row[0], row); });
    run.validation.forEach(function (row) { held.validation.set(row[0], row); });
    return { meta: run, held: held, attempt: run.attempt, active: run.active, socket: null, timer: null };
  });

  // The run's colour, as tailor.css gives its swatch (one palette for the page).
  function colour(place) {
    const swatch = document.querySelector(".run-swatch.run-" + place);
    return swatch ? getComputedStyle(swatch).backgroundColor : "rgb(1, 114, 173)";
  }

  function number(value) { return Number(value).toLocaleString("en"); }
  const loss = jobLive.loss;

  // One curve as x-ascending [xs, ys]: tokens that were not counted (0) and,
  // on a log axis, losses that are not positive cannot be placed.
  function curve(rows) {
    const column = X_COLUMN[view.x];
    const byX = new Map();
    rows.forEach(function (row) {
      const x = row[column];
      if (view.x === "tokens" && !(x > 0)) return;
      if (view.log && !(row[1] > 0)) return;
      byX.set(x, row[1]);
    });
    const xs = Array.from(byX.keys()).sort(function (a, b) { return a - b; });
    return [xs, xs.map(function (x) { return byX.get(x); })];
  }

  function sorted(map) {
    return Array.from(map.values()).sort(function (a, b) { return a[0] - b[0]; });
  }

  function tables() {
    const found = [];
    runs.forEach(function (run) {
      found.push(curve(sorted(run.held.train)));
      found.push(curve(sorted(run.held.validation)));
    });
    return found;
  }

  function count() {
    let total = 0;
    runs.forEach(function (run) { total += run.held.train.size + run.held.validation.size; });
    return total;
  }

  // "Loss of each run across steps. Slow: 3 training points, last training
  // loss 1.2000 at step 30; last validation loss 1.4000. Fast: …"
  function describe() {
    const parts = runs.map(function (run) {
      const train = sorted(run.held.train);
      const validation = sorted(run.held.validation);
      let said = run.meta.name + ": " + number(train.length) + " training points";
      if (train.length) {
        const last = train[train.length - 1];
        said += ", last training loss " + loss(last[1]) + " at step " + number(last[0]);
      }
      if (validation.length) said += ", last validation loss " + loss(validation[validation.length - 1][1]);
      return said;
    });
    return "Loss of each run across " + X_WORDS[view.x] + (view.log ? " (log scale)" : "") + ". " + parts.join("; ") + ".";
  }

  function options() {
    const series = [{ label: X_WORDS[view.x] }];
    runs.forEach(function (run) {
      const stroke = colour(run.meta.place);
      series.push({ label: run.meta.name + " training", stroke: stroke, width: 2, spanGaps: true, points: { show: false } });
      series.push({ label: run.meta.name + " validation", stroke: stroke, width: 2, dash: [6, 4], spanGaps: true, points: { show: true, size: 6, fill: stroke } });
    });
    return {
      width: Math.max(node.clientWidth, 280),
      height: 280,
      legend: { show: false },
      scales: { x: { time: false }, y: { distr: view.log ? 3 : 1 } },
      axes: [
        {
          label: X_WORDS[view.x],
          incrs: WHOLE,
          values: function (u, splits) {
            const labels = splits.map(function (v) { return number(v); });
            node.dataset.xTicks = labels.join(" ");
            return labels;
          },
        },
        { label: "loss" + (view.log ? " (log)" : "") },
      ],
      series: series,
    };
  }

  function draw() {
    drawing = false;
    const total = count();
    node.dataset.points = String(total);
    node.dataset.x = view.x;
    node.dataset.log = view.log ? "1" : "0";
    node.hidden = total === 0;
    if (empty) empty.hidden = total > 0;
    node.setAttribute("aria-label", describe());
    runs.forEach(function (run) {
      const said = document.querySelector('[data-points-of="' + run.meta.id + '"]');
      if (said) said.textContent = number(run.held.train.size) + " training, " + number(run.held.validation.size) + " validation points";
    });
    if (typeof uPlot === "undefined" || total === 0) return;
    const joined = uPlot.join(tables());
    if (chart === null) {
      node.innerHTML = "";
      chart = new uPlot(options(), joined, node);
    } else {
      chart.setData(joined);
    }
    node.dataset.drawn = String(Date.now());
  }

  function redraw() {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(draw);
  }

  function restart() {
    if (chart) { chart.destroy(); chart = null; }
    draw();
  }

  window.addEventListener("resize", function () {
    if (chart) chart.setSize({ width: Math.max(node.clientWidth, 280), height: 280 });
  });

  // --- the view ------------------------------------------------------------------

  if (form) {
    const apply = form.querySelector("[data-apply]");
    if (apply) apply.hidden = true;
    form.addEventListener("change", function () {
      const picked = form.querySelector('input[name="x"]:checked');
      view.x = picked ? picked.value : "step";
      view.log = form.querySelector('input[name="log"]').checked;
      const address = new URL(location.href);
      address.searchParams.set("x", view.x);
      if (view.log) address.searchParams.set("log", "1");
      else address.searchParams.delete("log");
      history.replaceState(null, "", address);
      restart();
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
  }

  // --- live ----------------------------------------------------------------------

  function lastStep(run) {
    let last = -1;
    run.held.train.forEach(function (_, step) { if (step > last) last = step; });
    run.held.validation.forEach(function (_, step) { if (step > last) last = step; });
    return last;
  }

  function add(run, p) {
    if (p.attempt > run.attempt) run.attempt = p.attempt;
    if (p.kind === "eval") {
      if (p.val_loss !== null) run.held.validation.set(p.step, [p.step, p.val_loss, p.tokens, p.elapsed]);
    } else if (p.train_loss !== null) {
      run.held.train.set(p.step, [p.step, p.train_loss, p.tokens, p.elapsed]);
    }
  }

  function dropAfter(run, step) {
    ["train", "validation"].forEach(function (kind) {
      Array.from(run.held[kind].keys()).forEach(function (s) { if (s > step) run.held[kind].delete(s); });
    });
  }

  function ask(run) {
    if (run.socket) run.socket.send({ after_step: lastStep(run), attempt: run.attempt });
  }

  // The run ended: one more ask brings what the live messages missed, then the socket closes.
  function ended(run, status) {
    if (!run.active || TERMINAL.indexOf(status) < 0) return false;
    run.active = false;
    clearInterval(run.timer);
    ask(run);
    return true;
  }

  function receive(run, message) {
    if (message.type === "points") {
      // From the start (after_step -1): these replace every point through last_step.
      if (message.reset) dropAfter(run, -1);
      message.points.forEach(function (p) { add(run, p); });
      redraw();
      if (!run.active && run.socket) run.socket.close();
      else if (message.summary) ended(run, message.summary.status);
    } else if (message.type === "point") {
      add(run, message.point);
      redraw();
      if (message.summary) ended(run, message.summary.status);
    } else if (message.type === "summary") {
      ended(run, message.job.status);
    } else if (message.type === "rewind") {
      dropAfter(run, message.after_step);
      redraw();
    }
  }

  function follow(run) {
    run.socket = jobLive.follow(run.meta.ws, {
      open: function () {
        ask(run);
        clearInterval(run.timer);
        run.timer = setInterval(function () { if (!document.hidden) ask(run); }, RESYNC_MS);
        node.dataset.live = String(runs.filter(function (r) { return r.socket && r.socket.open(); }).length);
      },
      message: function (message) { receive(run, message); },
      again: function () { clearInterval(run.timer); return run.active; },
    });
  }

  function start() {
    draw();
    runs.forEach(function (run) { if (run.active) follow(run); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
