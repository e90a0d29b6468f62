// The new-job wizard (templates/jobs/job_new.html). Each preview says which
// inputs changed since the last answered one (`changed`), so that the server
// redraws only what depends on them and never the control the user is on:
// arrowing through the models or presets keeps the focus on the radio.
(function () {
  "use strict";

  const changed = new Set();

  function inWizard(element) {
    return element && element.form && element.form.id === "wizard";
  }

  document.addEventListener("change", function (event) {
    if (inWizard(event.target) && event.target.name) changed.add(event.target.name);
  });

  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "wizard") return;
    const names = Array.from(changed);
    event.detail.parameters.changed = names.join(" ");
    event.detail.elt.dataset.sent = names.join(" ");
  });

  // A preview replaced by a newer one (hx-sync) answered nothing: its changes
  // stay listed and go with the next.
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (form.id !== "wizard" || !event.detail.successful) return;
    (form.dataset.sent || "").split(" ").forEach(function (name) { changed.delete(name); });
  });

  // Input made before htmx attached the form's triggers (a slow page, or a
  // hand quicker than the scripts) would ask for no preview and leave the
  // wizard drawn for the old values. Once, when htmx has set the page up:
  // controls whose values differ from those they were drawn with ask now.
  function movedSinceDrawn(element) {
    if (!element.name || element.type === "hidden") return false;
    if (element.tagName === "SELECT") {
      const drawn = Array.from(element.options).findIndex(function (option) {
        return option.defaultSelected;
      });
      return element.selectedIndex !== (drawn === -1 ? 0 : drawn);
    }
    if (element.type === "radio" || element.type === "checkbox") {
      return element.checked !== element.defaultChecked;
    }
    return "defaultValue" in element && element.value !== element.defaultValue;
  }

  let pageSetUp = false;
  htmx.onLoad(function () {
    if (pageSetUp) return;
    pageSetUp = true;
    const form = document.getElementById("wizard");
    if (!form) return;
    const moved = Array.from(form.elements).filter(movedSinceDrawn);
    if (!moved.length) return;
    moved.forEach(function (element) { changed.add(element.name); });
    htmx.trigger(form, "change");
  });

  // Inputs the preview kept: whether each is invalid follows its new message.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("#wizard .field-message[data-input]").forEach(function (slot) {
      const input = document.getElementById(slot.dataset.input);
      if (!input) return;
      if (slot.querySelector(".field-error")) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  });
})();
