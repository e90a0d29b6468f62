// A job's page, live: the loss chart, progress, status and log over one websocket.
//
// The page asks {"after_step": <last step it has>, "attempt": <newest attempt
// among its points>} on every (re)connect; the server replies with the stored
// points after it, then forwards live ones. Points are kept by (kind, step),
// so a replay that overlaps live points adds nothing twice. Any message may
// be lost, so the page converges on the database rather than trusting them:
// - a train point that skips past the logging interval, or one from a newer
//   attempt than the page holds, means something was missed: it asks again;
// - a resumed attempt replaced the points past its checkpoint: the server
//   answers an older attempt's cursor with a rewind before the points;
// - while the job is active it asks again every few seconds (and once more
//   when it ends); each answer carries the job's summary and how many points
//   are stored, and a count that differs from the page's brings a full replay.
// Every point comes with the job's summary as the database holds it after
// that point (progress, time left, elapsed, losses), so each logged step moves
// every figure; the server renders the same figures, formatted alike, on load.
// When the job reaches a final status (or saves a checkpoint) the page
// fetches its status-bound parts again (the failure and its next step, the
// actions, the progress card, the Finished card), the newest fetch winning.
// The status sentence follows every status a summary brings, and the flash
// messages said of the status the page loaded with go when it moves on.
// The chart is named by what it shows (role=img), and its legend shows the
// latest values while the cursor is off it.
// While the job is queued, its place in the training line ("Queued: 2nd in
// line; …") moves as the line does: the server sends the places that moved,
// each publication with a version, and the page keeps the newest it was told.
// What the job page, the jobs list (jobs_list_live.js) and Compare share
// (`jobLive`): numbers formatted as the server formats them (Django's
// floatformat: half away from zero on the shortest decimal form), what a
// socket closed by the end of the session means for the page, and the
// socket itself, opened again after a drop (`follow`).
const jobLive = (function () {
  "use strict";

  const SESSION_ENDED = 4401; // studio/sockets.py's SESSION_ENDED_CODE
  let leaving = false;
  window.addEventListener("pagehide", function () { leaving = true; });
  document.addEventListener("submit", function (event) {
    if (!event.defaultPrevented) leaving = true;
  });

  function fixed(value, digits) {
    const shifted = Math.abs(value).toExponential().replace(/e([+-]\d+)$/, function (_, power) {
      return "e" + (Number(power) + digits);
    });
    return (Math.sign(value) * Math.round(Number(shifted)) / Math.pow(10, digits)).toFixed(digits);
  }

  // Whether the socket closed because the session ended (a logout, a
  // password change, its age; in this tab or another): the page then loads
  // again, which leads to the login page, unless it is already leaving (its
  // own Log out, say) and goes where it was going.
  function sessionEnded(event) {
    if (event.code !== SESSION_ENDED) return false;
    if (!leaving) location.reload();
    return true;
  }

  // A websocket to `path` on this host, opened again after a drop (1 s, then
  // twice as long each time, at most 15 s), but not once the session ended
  // nor when `handlers.again()` says no. `handlers.open(socket)` runs on every
  // (re)connect, `handlers.message(data)` with each parsed message, and
  // `handlers.dropped()` when it closes and will open again. Returns
  // `send(data)`, which sends only while the socket is open (true if it did).
  function follow(path, handlers) {
    let socket = null;
    let backoff = 1000;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + path);
      socket.addEventListener("open", function () {
        backoff = 1000;
        if (handlers.open) handlers.open();
      });
      socket.addEventListener("message", function (event) { handlers.message(JSON.parse(event.data)); });
      socket.addEventListener("close", function (event) {
        if (sessionEnded(event) || (handlers.again && !handlers.again())) return;
        if (handlers.dropped) handlers.dropped();
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 15000);
      });
    }
    connect();
    return {
      send: function (data) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(data));
        return true;
      },
      open: function () { return socket !== null && socket.readyState === WebSocket.OPEN; },
      close: function () { if (socket) socket.close(); },
    };
  }

  return {
    fixed: fixed,
    loss: function (value) { return value === null || value === undefined ? "—" : fixed(value, 4); },
    sessionEnded: sessionEnded,
    follow: follow,
  };
})();

(function () {
  "use strict";

  const root = document.getElementById("job-live");
  if (!root) return;

  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const LOG_TAIL = 50;
  // A lost summary or point is healed by the next resync: well within 30 s.
  const RESYNC_MS = (parseFloat(root.dataset.resyncSeconds) || 10) * 1000;
  const chartNode = document.getElementById("loss-chart");
  const points = new Map(); // "kind:step" → payload
  let chart = null;
  let socket = null;
  let status = root.dataset.status;
  let loggingSteps = parseInt(root.dataset.loggingSteps || "0", 10) || 0;
  let resyncTimer = null;
  let totalSteps = null;
  // The newest place in the training line told (its version and sentence).
  let placeVersion = 0;
  let placeSentence = null;

  function byId(id) { return document.getElementById(id); }

  // jobs/status_sentences.py's sentences, by status.
  const sentences = (function () {
    const node = byId("job-status-sentences");
    return node ? JSON.parse(node.textContent) : {};
  })();

  function lastStep() {
    let last = -1;
    points.forEach(function (p) { if (p.step > last) last = p.step; });
    return last;
  }

  function newestAttempt() {
    let newest = 0;
    points.forEach(function (p) { if (p.attempt > newest) newest = p.attempt; });
    return newest;
  }

  function heldThrough(step) {
    let count = 0;
    points.forEach(function (p) { if (p.step <= step) count += 1; });
    return count;
  }

  function dropWhere(test) {
    Array.from(points.keys()).forEach(function (key) { if (test(points.get(key))) points.delete(key); });
    if (chart) { chart.destroy(); chart = null; chartNode.innerHTML = ""; }
  }

  function lastTrainStep() {
    let last = -1;
    points.forEach(function (p) { if (p.kind === "train" && p.step > last) last = p.step; });
    return last;
  }

  // --- chart ---------------------------------------------------------------------

  function chartData() {
    const train = new Map(), val = new Map();
    points.forEach(function (p) {
      if (p.kind === "eval") { if (p.val_loss !== null) val.set(p.step, p.val_loss); }
      else if (p.train_loss !== null) train.set(p.step, p.train_loss);
    });
    const steps = Array.from(new Set(Array.from(train.keys()).concat(Array.from(val.keys()))));
    steps.sort(function (a, b) { return a - b; });
    return [
      steps,
      steps.map(function (s) { return train.has(s) ? train.get(s) : null; }),
      steps.map(function (s) { return val.has(s) ? val.get(s) : null; }),
    ];
  }

  // Steps are whole: ticks only at whole increments, never "2.5".
  const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000,
    10000, 20000, 25000, 50000, 100000, 200000, 500000, 1000000];

  function latestOf(values) {
    for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null && values[i] !== undefined) return i;
    return -1;
  }

  // The legend's value: under the cursor, else (idx null) the series' latest.
  function legendValue(format) {
    return function (u, value, seriesIdx, idx) {
      if (idx === null || idx === undefined) {
        const last = latestOf(u.data[seriesIdx]);
        value = last < 0 ? null : u.data[seriesIdx][last];
      }
      return value === null || value === undefined ? "—" : format(value);
    };
  }

  function stepText(step) { return Number(step).toLocaleString("en"); }

  // The chart's text alternative, e.g. "Loss chart: training loss from 3.2000
  // to 1.8000 over steps 1 to 75 of 75; validation loss 1.9021 at step 75."
  function describe(data) {
    const steps = data[0], train = data[1], val = data[2];
    if (!steps.length) {
      return finished() ? "Loss chart: no loss was logged." : "Loss chart: no points yet.";
    }
    const parts = [];
    const first = train.findIndex(function (v) { return v !== null; });
    const last = latestOf(train);
    if (first >= 0) {
      const of = totalSteps ? " of " + stepText(totalSteps) : "";
      parts.push(first === last
        ? "training loss " + loss(train[last]) + " at step " + stepText(steps[last]) + of
        : "training loss from " + loss(train[first]) + " to " + loss(train[last]) +
          " over steps " + stepText(steps[first]) + " to " + stepText(steps[last]) + of);
    }
    const lastVal = latestOf(val);
    if (lastVal >= 0) {
      parts.push("validation loss " + loss(val[lastVal]) + " at step " + stepText(steps[lastVal]));
    }
    return "Loss chart: " + parts.join("; ") + ".";
  }

  function redraw() {
    chartNode.dataset.points = String(points.size);
    chartNode.hidden = points.size === 0;
    const empty = byId("loss-chart-empty");
    if (empty) empty.hidden = points.size > 0;
    const data = chartData();
    chartNode.setAttribute("aria-label", describe(data));
    // Other charts of the page (preference_chart.js) draw from the same points.
    root.dispatchEvent(new CustomEvent("job:points", { detail: Array.from(points.values()) }));
    if (typeof uPlot === "undefined" || points.size === 0) return;
    if (chart === null) {
      chart = new uPlot({
        width: Math.max(chartNode.clientWidth, 280),
        height: 260,
        scales: { x: { time: false } },
        axes: [
          {
            label: "step",
            incrs: STEP_INCREMENTS,
            values: function (u, splits) {
              const labels = splits.map(function (s) { return Number.isInteger(s) ? stepText(s) : ""; });
              // The ticks drawn on the canvas, readable (and checked) in the page.
              chartNode.dataset.stepTicks = labels.filter(Boolean).join(" ");
              return labels;
            },
          },
          { label: "loss" },
        ],
        series: [
          { label: "step", value: legendValue(stepText) },
          { label: "train loss", stroke: "rgb(1, 114, 173)", width: 2, spanGaps: true, points: { show: false }, value: legendValue(loss) },
          { label: "validation loss", stroke: "rgb(239, 108, 0)", width: 2, spanGaps: true, points: { show: true, size: 7 }, value: legendValue(loss) },
        ],
      }, data, chartNode);
    } else {
      chart.setData(data);
    }
    // New points while the cursor is off the chart: the legend shows the latest.
    if (chart.cursor.idx === null || chart.cursor.idx === undefined) chart.setLegend({ idx: null });
  }

  window.addEventListener("resize", function () {
    if (chart) chart.setSize({ width: Math.max(chartNode.clientWidth, 280), height: 260 });
  });

  function addPoint(p) {
    points.set(p.kind + ":" + p.step, p);
  }

  // --- progress and status --------------------------------------------------------

  // As jobs/wizard.py's human_duration: Python's round() takes a tie to the even side.
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const rounded = Math.round(seconds);
    seconds = Math.abs(seconds % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
    if (seconds < 60) return seconds + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 10) return minutes + " min " + String(seconds % 60).padStart(2, "0") + " s";
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  // Like Django's floatformat: the number's shortest decimal form rounded half
  // away from zero (toFixed rounds its binary value: 3.54945 would be 3.5494).
  const fixed = jobLive.fixed;
  const loss = jobLive.loss;

  function whole(value) {
    return value === null || value === undefined ? "—" : Number(fixed(value, 0)).toLocaleString("en");
  }

  function setText(id, text) {
    const node = byId(id);
    if (node) node.textContent = text;
  }

  let exportStatus = null;

  // Flash messages spoke of the status the page loaded with ("… is queued for
  // a training worker.", "Cancelling: …"): once it moves on they are stale.
  // Errors stay: they say what was refused.
  function dropStaleMessages() {
    document.querySelectorAll(".messages .message").forEach(function (node) {
      if (!node.classList.contains("message-error") && !node.classList.contains("message-warning")) node.remove();
    });
  }

  function applySummary(job) {
    totalSteps = job.total_steps;
    setText("job-step", job.current_step.toLocaleString("en"));
    setText("job-total-steps", job.total_steps.toLocaleString("en"));
    setText("job-progress-percent", job.progress_percent + " %");
    const bar = byId("job-progress-bar");
    if (bar) bar.value = job.progress_percent;
    // The page's summaries carry the time left (the worker's estimate, else the
    // measured rate's) and the attempt's elapsed time; the list's do not.
    const left = job.time_left_seconds !== undefined ? job.time_left_seconds : job.eta_seconds;
    setText("job-eta", TERMINAL.indexOf(job.status) >= 0 ? "—" : duration(left));
    if (job.elapsed_seconds !== undefined) setText("job-elapsed", duration(job.elapsed_seconds));
    setText("job-train-loss", loss(job.train_loss));
    setText("job-val-loss", loss(job.val_loss));
    if (job.tokens_per_second !== undefined) setText("job-tps", whole(job.tokens_per_second));
    const best = byId("job-best-val-loss");
    if (best && job.best_val_loss !== undefined) {
      best.hidden = job.best_val_loss === null;
      best.textContent = "best " + loss(job.best_val_loss);
    }
    const badge = root.querySelector("[data-status-badge]");
    if (badge) {
      badge.textContent = job.status_label;
      badge.className = "badge badge-job-" + job.status;
    }
    if (job.export_status !== undefined && job.export_status !== exportStatus) {
      // The merged model's button follows its export: fetch the panel again.
      if (exportStatus !== null) reloadPanel();
      exportStatus = job.export_status;
    }
    if (job.status !== status) {
      const becameFinal = TERMINAL.indexOf(job.status) >= 0;
      status = job.status;
      root.dataset.status = status;
      // A queued job's place, when the line's message came first, says more.
      const said = status === "queued" && placeSentence ? placeSentence : sentences[status];
      if (said) setText("job-status-sentence", said);
      dropStaleMessages();
      // Buttons, downloads, a failure's next step depend on the status: fetch them once.
      if (becameFinal || job.status === "cancelling") reloadPanel();
    }
  }

  function finished() { return TERMINAL.indexOf(status) >= 0; }

  // The queued job's place, as the line moves; a late (older) message is dropped.
  function applyPlaces(message) {
    // A place says the job was queued then: its summary may come after it.
    if (["created", "queued"].indexOf(status) < 0 || message.version <= placeVersion) return;
    message.places.forEach(function (place) {
      if (place.id !== root.dataset.jobId) return;
      placeVersion = message.version;
      placeSentence = place.sentence;
      if (status === "queued") setText("job-status-sentence", place.sentence);
    });
  }

  function applyLatestPoint(p) {
    if (p.kind !== "train") return;
    if (p.tokens_per_second !== null) setText("job-tps", whole(p.tokens_per_second));
  }

  // The parts of the page rendered from the job's status (job_detail.html's
  // "job-parts"), replaced by id. Two fetches close together (cancelling, then
  // cancelled) may answer out of order: only the newest one's answer is used.
  const PARTS = ["job-outcome", "job-actions", "job-progress", "loss-chart-empty", "job-panel"];
  let reloads = 0;

  function reloadPanel() {
    const mine = ++reloads;
    fetch(root.dataset.panelUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || mine !== reloads) return;
        const answer = document.createElement("template");
        answer.innerHTML = html;
        PARTS.forEach(function (id) {
          const fresh = answer.content.getElementById(id);
          const old = byId(id);
          if (!fresh || !old) return;
          old.replaceWith(fresh);
          // Its hx- attributes (the evaluation's load, the delete's post) come alive.
          if (typeof htmx !== "undefined") htmx.process(fresh);
        });
        redraw();
      })
      .catch(function () { /* the next status change or a reload brings them */ });
  }

  // --- log ------------------------------------------------------------------------

  function addEvent(event) {
    const log = byId("job-log");
    if (!log || log.querySelector('[data-event-id="' + event.id + '"]')) return;
    // A replayed event that was missed live goes in its place, by id.
    const later = Array.from(log.children).find(function (li) { return Number(li.dataset.eventId) > event.id; });
    const item = document.createElement("li");
    item.className = "log-" + event.level;
    item.dataset.eventId = event.id;
    const time = document.createElement("time");
    time.dateTime = event.created_at;
    time.textContent = new Date(event.created_at).toTimeString().slice(0, 8);
    const level = document.createElement("span");
    level.className = "log-level";
    level.textContent = event.level;
    item.append(time, " ", level, " " + event.message);
    log.insertBefore(item, later || null);
    while (log.children.length > LOG_TAIL) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    if (event.kind === "checkpoint") reloadPanel();
  }

  // --- socket ---------------------------------------------------------------------

  // The cursor: the last step held and the newest attempt it came from.
  function ask(afterStep, attempt) {
    if (socket) {
      socket.send({
        after_step: afterStep === undefined ? lastStep() : afterStep,
        attempt: attempt === undefined ? newestAttempt() : attempt,
      });
    }
  }

  function stopResync() {
    if (resyncTimer !== null) { clearInterval(resyncTimer); resyncTimer = null; }
  }

  function startResync() {
    if (resyncTimer !== null || finished()) return;
    resyncTimer = setInterval(function () { if (!document.hidden) ask(); }, RESYNC_MS);
  }

  function receivePoints(message) {
    // A full replay is every point stored through last_step: it replaces those held.
    if (message.reset) dropWhere(function (p) { return p.step <= message.stored.last_step; });
    message.points.forEach(addPoint);
    if (message.points.length) applyLatestPoint(message.points[message.points.length - 1]);
    message.events.forEach(addEvent);
    applySummary(message.summary);
    redraw();
    root.dataset.synced = String(Date.now());
    // This answer was read after the job ended: nothing more will change.
    if (finished()) stopResync();
    // The page holds other points than the database (one was lost, say): start over.
    if (message.stored && !message.reset && heldThrough(message.stored.last_step) !== message.stored.count) {
      ask(-1, 0);
    }
  }

  function receive(message) {
    if (message.type === "points") {
      receivePoints(message);
    } else if (message.type === "point") {
      const p = message.point;
      const previous = lastTrainStep();
      const before = lastStep();
      const newest = newestAttempt();
      const gap = p.kind === "train" && loggingSteps > 0 && previous >= 0 && p.step > previous + loggingSteps;
      addPoint(p);
      applyLatestPoint(p);
      if (message.summary) applySummary(message.summary);
      else setText("job-step", p.step.toLocaleString("en"));
      redraw();
      if (newest > 0 && p.attempt > newest) {
        // A newer attempt: had its rewind been lost, the older points past its
        // checkpoint would stay. Ask with the old cursor; a rewind comes back if so.
        ask(before, newest);
      } else if (gap) {
        // Ask from before the hole; the reply's points are deduplicated.
        ask(previous);
      }
    } else if (message.type === "event") {
      addEvent(message.event);
    } else if (message.type === "places") {
      applyPlaces(message);
    } else if (message.type === "summary") {
      const wasFinished = finished();
      applySummary(message.job);
      // The last sync, read after the end, brings whatever the live messages missed.
      if (finished() && !wasFinished) ask();
    } else if (message.type === "rewind") {
      // A resumed run replaced the points after its checkpoint (the server's
      // answer to an older cursor names the attempts whose points went).
      // (No attempt: every point past the step; `p.attempt > undefined` is false.)
      dropWhere(function (p) { return p.step > message.after_step && !(p.attempt > message.attempt); });
      redraw();
    }
  }

  function connect() {
    socket = jobLive.follow(root.dataset.wsPath, {
      open: function () {
        root.dataset.live = "connected";
        ask();
        startResync();
      },
      message: receive,
      dropped: function () { root.dataset.live = "reconnecting"; },
    });
  }

  // A tab in the background skips its resyncs; it catches up when shown.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && resyncTimer !== null) ask();
  });

  function start() {
    redraw();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
