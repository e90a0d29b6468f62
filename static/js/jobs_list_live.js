// Needs job_live.js first: its `jobLive` (numbers as the server formats them,
// a socket closed by the end of the session).
// The jobs list, live: each summary updates its row (id "job-<id>"); a job the
// page has not shown yet gets its row fetched once, with the list's filters
// (the server answers nothing when they leave it out). Summaries may be lost, so
// while rows are active the page asks for theirs every few seconds (and on
// every reconnect): {"jobs": [ids]} is answered with what the database holds.
// The rows it asked about are the ones whose places in the training line the
// server forwards as the line moves ("2nd in line; …"); each row keeps the
// version of the place it shows, so a late message moves nothing back.
// The filter bar swaps the results (htmx): the list is looked up each time.
(function () {
  "use strict";

  // An empty list listens too: its first job reloads the page into a table.
  function current() {
    return document.getElementById("jobs-table") || document.getElementById("jobs-empty");
  }
  const first = current();
  if (!first || !first.dataset.wsPath) return;
  const ACTIVE = ["created", "queued", "running", "cancelling"];
  const REFRESH_MS = (parseFloat(first.dataset.resyncSeconds) || 10) * 1000;
  let socket = null;
  const fetching = new Set();

  const loss = jobLive.loss;

  // A fetched row goes first in its table (grouped: its dataset's section,
  // whose count it adds to; a dataset the page has no section for reloads it).
  function insertRow(table, html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const row = holder.content.querySelector("tr");
    if (!row) return;
    let body = table.tBodies ? table.tBodies[0] : null;
    if (table.dataset.grouped !== undefined) {
      body = table.querySelector('tbody[data-dataset="' + row.dataset.dataset + '"]');
      if (!body) { location.reload(); return; }
      const count = body.closest("section").querySelector("[data-group-count]");
      const jobs = (parseInt(count.dataset.groupCount, 10) || 0) + 1;
      count.dataset.groupCount = String(jobs);
      count.textContent = "· " + jobs.toLocaleString("en") + (jobs === 1 ? " job" : " jobs");
    }
    if (!body) return;
    body.insertAdjacentElement("afterbegin", row);
    if (window.htmx) window.htmx.process(row); // its star posts through htmx
  }

  function update(job) {
    const table = current();
    if (!table) return;
    let row = document.getElementById("job-" + job.id);
    if (!row) {
      const filter = table.dataset.statusFilter;
      if ((filter && filter !== job.status) || fetching.has(job.id)) return;
      fetching.add(job.id);
      const query = table.dataset.filterQuery ? "?" + table.dataset.filterQuery : "";
      fetch("/jobs/" + job.id + "/row/" + query, { headers: { "HX-Request": "true" } })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          fetching.delete(job.id);
          const now = current();
          if (!html.trim() || !now || document.getElementById("job-" + job.id)) return;
          if (now.id === "jobs-empty") { location.reload(); return; }
          insertRow(now, html);
          refresh(); // the server learns the new row: its place moves live too
        }, function () { fetching.delete(job.id); });
      return;
    }
    row.dataset.status = job.status;
    // "2nd in line; …" speaks of a queued job only.
    if (job.status !== "queued") dropQueueLine(row);
    const badge = row.querySelector("[data-status-badge]");
    badge.textContent = job.status_label;
    badge.className = "badge badge-job-" + job.status;
    row.querySelector('[data-field="progress"]').value = job.progress_percent;
    row.querySelector('[data-field="step"]').textContent = job.current_step.toLocaleString("en");
    row.querySelector('[data-field="total"]').textContent = job.total_steps.toLocaleString("en");
    row.querySelector('[data-field="train-loss"]').textContent = loss(job.train_loss);
  }

  function dropQueueLine(row) {
    const queueLine = row.querySelector('[data-testid="queue-line"]');
    if (!queueLine) return;
    const before = queueLine.previousElementSibling;
    if (before && before.tagName === "BR") before.remove();
    queueLine.remove();
    delete row.dataset.placeVersion;
  }

  // As the row's template writes it: <br><span … data-testid="queue-line">.
  function placeRow(place, version) {
    const row = document.getElementById("job-" + place.id);
    // A place says the job was queued then: its summary may come after it.
    if (!row || ["created", "queued"].indexOf(row.dataset.status) < 0) return;
    if (version <= (parseInt(row.dataset.placeVersion || "0", 10) || 0)) return;
    row.dataset.placeVersion = String(version);
    let queueLine = row.querySelector('[data-testid="queue-line"]');
    if (!queueLine) {
      const cell = row.querySelector('[data-label="Status"] > div');
      if (!cell) return;
      queueLine = document.createElement("span");
      queueLine.className = "muted small-text queue-line";
      queueLine.dataset.testid = "queue-line";
      cell.append(document.createElement("br"), queueLine);
    }
    queueLine.textContent = place.message;
  }

  // The rows whose job may still change (a finished job's row stays as it is).
  function refresh() {
    const table = current();
    if (!table || !socket || !socket.open() || document.hidden) return;
    const ids = Array.from(table.querySelectorAll("tr[data-status]"))
      .filter(function (row) { return ACTIVE.indexOf(row.dataset.status) >= 0; })
      .map(function (row) { return row.id.replace(/^job-/, ""); });
    if (ids.length) socket.send({ jobs: ids });
  }

  function connect() {
    socket = jobLive.follow(first.dataset.wsPath, {
      open: function () {
        markLive("connected");
        refresh();
      },
      message: function (message) {
        if (message.type === "summary") update(message.job);
        else if (message.type === "summaries") {
          message.jobs.forEach(update);
          const table = current();
          if (table) table.dataset.synced = String(Date.now());
        } else if (message.type === "places") {
          message.places.forEach(function (place) { placeRow(place, message.version); });
        }
      },
      dropped: function () { markLive("reconnecting"); },
    });
  }

  let live = "";
  function markLive(state) {
    live = state;
    const table = current();
    if (table) table.dataset.live = state;
  }

  // New results from the filter bar: they are live as the old ones were.
  document.addEventListener("htmx:afterSettle", function () {
    if (live) markLive(live);
    refresh();
  });

  setInterval(refresh, REFRESH_MS);
  connect();
})();
