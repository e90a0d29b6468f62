// The playground: one prompt to several models, answers streaming side by side.
//
// The form goes to the server over a websocket ({"action": "run", ...}); the
// server answers "queued" (the panes), "started", "progress" (the texts so far,
// cumulative, ordered by seq: an overtaken message is simply dropped) and
// "done" (the stored results with timings). Votes are posted as forms.
(function () {
  "use strict";

  const form = document.getElementById("playground-form");
  if (!form) return;

  const panesNode = document.getElementById("panes");
  const stateNode = document.getElementById("pg-state");
  const runButton = document.getElementById("pg-run");
  const stopButton = document.getElementById("pg-stop");
  const voteBox = document.getElementById("vote-box");
  const baseSelect = document.getElementById("pg-base");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

  let socket = null;
  let pending = null; // a message waiting for the socket to open
  let run = null; // {id, panes, task, seq, startedAt, firstAt: []}

  // --- the form ----------------------------------------------------------------------

  function task() {
    return baseSelect.selectedOptions[0].dataset.task;
  }

  function showBase() {
    const base = baseSelect.value;
    form.querySelectorAll(".model-group").forEach(function (group) {
      const mine = group.dataset.base === base;
      group.hidden = !mine;
      if (!mine) group.querySelectorAll("input").forEach(function (box) { box.checked = false; });
    });
    const classifier = task() === "sequence-classification";
    form.querySelector(".chat-fields").hidden = classifier;
    form.querySelector(".text-fields").hidden = !classifier;
    form.querySelector(".generation-params").hidden = classifier;
  }

  function chosenModels() {
    return Array.from(form.querySelectorAll(".model-group:not([hidden]) input[name=models]:checked"))
      .map(function (box) { return box.value; });
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (node) {
      node.hidden = true;
      node.textContent = "";
    });
  }

  function showErrors(errors) {
    clearErrors();
    Object.keys(errors).forEach(function (field) {
      // The server names the page's fields (services/playground.py); anything
      // else is said under the models.
      const node = form.querySelector('[data-error-for="' + field + '"]') ||
        form.querySelector('[data-error-for="models"]');
      node.textContent = errors[field];
      node.hidden = false;
    });
    setState("");
  }

  function setState(text) {
    stateNode.textContent = text;
  }

  function busy(on) {
    runButton.disabled = on;
    runButton.setAttribute("aria-busy", on ? "true" : "false");
    stopButton.hidden = !on;
  }

  // --- the socket --------------------------------------------------------------------

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return;
    }
    pending = message;
    if (!socket || socket.readyState > WebSocket.OPEN) connect();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + form.dataset.wsPath);
    socket.addEventListener("open", function () {
      if (pending) {
        socket.send(JSON.stringify(pending));
        pending = null;
      }
    });
    socket.addEventListener("message", function (event) {
      receive(JSON.parse(event.data));
    });
    socket.addEventListener("close", function (event) {
      if (run && !run.done) {
        // 4401: the session ended (a logout, a password change, its age).
        finishWithError(event.code === 4401
          ? "You were signed out: log in again (reload this page), then run it again."
          : "The connection to the studio closed; run it again.");
      }
    });
  }

  function receive(message) {
    if (message.type === "invalid") {
      busy(false);
      showErrors(message.errors);
      return;
    }
    if (message.type === "queued") {
      startPanes(message);
      return;
    }
    if (!run || message.id !== run.id || run.done) return;
    if (message.type === "started") {
      setState("Generating…");
    } else if (message.type === "progress") {
      if (message.seq <= run.seq) return;
      run.seq = message.seq;
      message.texts.forEach(function (text, index) { showText(index, text); });
    } else if (message.type === "done") {
      finish(message);
    }
  }

  // --- panes -------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function errorDetail(text) {
    const box = element("details", "small-text");
    box.appendChild(element("summary", "", "The error (operators only)"));
    const pre = element("pre", "traceback", text);
    pre.setAttribute("data-testid", "error-detail");
    box.appendChild(pre);
    return box;
  }

  function startPanes(message) {
    run = {
      id: message.id, panes: message.panes, task: message.task, seq: 0, done: false,
      startedAt: performance.now(), firstAt: [],
    };
    panesNode.textContent = "";
    panesNode.style.setProperty("--pane-count", message.panes.length);
    message.panes.forEach(function (pane, index) {
      const node = element("article", "pane");
      node.setAttribute("data-testid", "pane-" + index);
      node.dataset.model = pane.model;
      const header = element("header");
      header.appendChild(element("h2", "pane-label card-heading", pane.label));
      header.appendChild(element("code", "pane-model small-text", pane.model));
      node.appendChild(header);
      const body = element("div", "pane-body");
      const text = element("pre", "pane-text");
      text.setAttribute("data-testid", "pane-text-" + index);
      body.appendChild(text);
      node.appendChild(body);
      const footer = element("footer", "pane-stats muted small-text", "waiting…");
      footer.setAttribute("data-testid", "pane-stats-" + index);
      node.appendChild(footer);
      panesNode.appendChild(node);
    });
    voteBox.hidden = true;
    setState("Waiting for the inference worker…");
  }

  function paneNode(index) {
    return panesNode.children[index];
  }

  function showText(index, text) {
    const node = paneNode(index);
    if (!node) return;
    if (text && run.firstAt[index] === undefined) {
      run.firstAt[index] = performance.now();
      node.querySelector(".pane-stats").textContent = "first token after " +
        Math.round(run.firstAt[index] - run.startedAt) + " ms";
    }
    node.querySelector(".pane-text").textContent = text;
    node.classList.add("pane-streaming");
    node.dataset.updates = String(Number(node.dataset.updates || 0) + 1);
  }

  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return seconds < 1 ? Math.round(seconds * 1000) + " ms" : seconds.toFixed(2) + " s";
  }

  function showBars(node, result) {
    const body = node.querySelector(".pane-body");
    body.textContent = "";
    const list = element("ul", "label-bars");
    Object.keys(result.probabilities).forEach(function (label) {
      const p = result.probabilities[label];
      const item = element("li", label === result.label ? "label-top" : "");
      item.appendChild(element("span", "label-name", label));
      const bar = element("span", "label-bar");
      const fill = element("span", "label-fill");
      fill.style.width = (100 * p).toFixed(1) + "%";
      bar.appendChild(fill);
      item.appendChild(bar);
      item.appendChild(element("span", "label-p", (100 * p).toFixed(1) + " %"));
      list.appendChild(item);
    });
    list.setAttribute("data-testid", "pane-label-" + Array.from(panesNode.children).indexOf(node));
    list.dataset.label = result.label;
    body.appendChild(list);
  }

  function finish(message) {
    run.done = true;
    busy(false);
    const results = message.results || [];
    run.panes.forEach(function (pane, index) {
      const node = paneNode(index);
      const result = results[index];
      node.classList.remove("pane-streaming");
      const stats = node.querySelector(".pane-stats");
      if (!result || result.error) {
        node.classList.add("pane-failed");
        const why = (result && result.error) || message.error || "No answer.";
        const body = node.querySelector(".pane-body");
        body.appendChild(element("p", "field-error", why));
        // Sent to staff only: the exception behind the sentence.
        const detail = (result && result.error_detail) || message.error_detail;
        if (detail) body.appendChild(errorDetail(detail));
        stats.textContent = "failed";
        return;
      }
      if (result.probabilities) {
        showBars(node, result);
        stats.textContent = formatSeconds(result.seconds);
        return;
      }
      node.querySelector(".pane-text").textContent = result.text;
      const parts = [
        "first token " + formatSeconds(result.first_token_seconds),
        result.completion_tokens + " tokens",
        (result.tokens_per_second ? result.tokens_per_second.toFixed(1) : "—") + " tokens/s",
      ];
      if (result.finish_reason === "length") parts.push("stopped at the token limit");
      stats.textContent = parts.join(" · ");
    });
    const labels = { succeeded: "Done.", cancelled: "Stopped.", failed: "Failed." };
    setState((labels[message.status] || message.status) + (message.error ? " " + message.error : ""));
    if (message.status === "succeeded" && run.panes.length >= 2) offerVote();
    refreshRecent();
  }

  function finishWithError(text) {
    if (!run) return;
    finish({ status: "failed", error: text, results: [] });
  }

  // --- votes -------------------------------------------------------------------------

  function offerVote() {
    const a = document.getElementById("vote-a");
    const b = document.getElementById("vote-b");
    [a, b].forEach(function (select) {
      select.textContent = "";
      run.panes.forEach(function (pane) {
        const option = element("option", "", pane.label);
        option.value = pane.model;
        select.appendChild(option);
      });
    });
    a.selectedIndex = 0;
    b.selectedIndex = 1;
    document.getElementById("vote-status").textContent = "";
    markChoice(null);
    voteBox.hidden = false;
  }

  // The verdict standing for the pair now chosen (none when the pair changes).
  function markChoice(choice) {
    voteBox.querySelectorAll("button[data-choice]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.choice === choice ? "true" : "false");
    });
  }

  // Put the server's fragments (ids it shares with this page) in place: their
  // contents, so that a live region stays the node a screen reader watches.
  function replaceFragments(html, ids) {
    const answer = document.createElement("template");
    answer.innerHTML = html;
    ids.forEach(function (id) {
      const fresh = answer.content.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceChildren.apply(old, Array.from(fresh.childNodes));
    });
  }

  ["vote-a", "vote-b"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", function () { markChoice(null); });
  });

  voteBox.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-choice]");
    if (!button || !run) return;
    const body = new URLSearchParams({
      model_a: document.getElementById("vote-a").value,
      model_b: document.getElementById("vote-b").value,
      choice: button.dataset.choice,
    });
    const url = form.dataset.voteUrl.replace("00000000-0000-0000-0000-000000000000", run.id);
    fetch(url, { method: "POST", body: body, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
      .then(function (response) {
        return response.text().then(function (html) {
          replaceFragments(html, ["vote-status", "vote-tallies"]);
          if (response.ok) markChoice(button.dataset.choice);
        });
      })
      .catch(function () {
        document.getElementById("vote-status").textContent =
          "The vote could not be sent; try again.";
      });
  });

  // --- recent prompts ----------------------------------------------------------------

  // The list as the server has it now, the prompt just run included.
  function refreshRecent() {
    fetch(location.pathname, {
      headers: { "HX-Request": "true", "HX-Target": "recent-prompts" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) replaceFragments(html, ["recent-prompts"]); })
      .catch(function () { /* the list stays as it was until the next run */ });
  }

  // --- wiring ------------------------------------------------------------------------

  function number(name) {
    const value = form.elements[name].value.trim();
    return value === "" ? null : Number(value);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    const message = { action: "run", models: chosenModels() };
    if (task() === "sequence-classification") {
      message.text = form.elements.text.value;
    } else {
      message.system = form.elements.system.value;
      message.prompt = form.elements.prompt.value;
      ["max_new_tokens", "temperature", "top_p", "seed"].forEach(function (name) {
        message[name] = number(name);
      });
    }
    busy(true);
    setState("Sending…");
    send(message);
  });

  stopButton.addEventListener("click", function () {
    send({ action: "stop" });
  });

  baseSelect.addEventListener("change", showBase);

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-recent]");
    if (!button) return;
    const data = document.getElementById("recent-prompts-data");
    const entry = (data ? JSON.parse(data.textContent) : {})[button.dataset.recent];
    if (!entry) return;
    baseSelect.value = entry.base;
    showBase();
    form.querySelectorAll(".model-group:not([hidden]) input[name=models]").forEach(function (box) {
      box.checked = entry.models.indexOf(box.value) >= 0;
    });
    form.elements.system.value = entry.system || "";
    form.elements.prompt.value = entry.prompt || "";
    form.elements.text.value = entry.text || "";
    ["max_new_tokens", "temperature", "top_p", "seed"].forEach(function (name) {
      const value = entry.params[name];
      form.elements[name].value = value === null || value === undefined ? "" : value;
    });
    form.scrollIntoView({ behavior: "smooth" });
  });

  showBase();
  connect();
})();
