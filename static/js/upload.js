// Dataset upload: drag-and-drop onto the drop zone, and a progress bar fed
// by htmx's XHR progress events. Works on forms swapped in by htmx too.
(function () {
  "use strict";

  function formatBytes(bytes) {
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  function showFileName(form) {
    const input = form.querySelector("input[name=file]");
    const label = form.querySelector("[data-file-name]");
    if (input && label) {
      label.textContent = input.files.length ? input.files[0].name + " · " + formatBytes(input.files[0].size) : "";
    }
  }

  document.addEventListener("dragover", function (event) {
    const zone = event.target.closest("[data-drop-zone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.add("drop-zone-active");
  });
  document.addEventListener("dragleave", function (event) {
    const zone = event.target.closest("[data-drop-zone]");
    if (zone) zone.classList.remove("drop-zone-active");
  });
  document.addEventListener("drop", function (event) {
    const zone = event.target.closest("[data-drop-zone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("drop-zone-active");
    const input = zone.querySelector("input[type=file]");
    if (input && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showFileName(zone.closest("form"));
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-upload-form] input[name=file]")) {
      showFileName(event.target.form);
    }
  });

  function parts(form) {
    return {
      bar: form.querySelector("[data-upload-progress]"),
      status: form.querySelector("[data-upload-status]"),
      button: form.querySelector("[data-upload-button]"),
    };
  }

  document.addEventListener("htmx:xhr:progress", function (event) {
    const form = event.target.closest && event.target.closest("[data-upload-form]");
    if (!form || !event.detail.lengthComputable) return;
    const { bar, status } = parts(form);
    const percent = Math.round((100 * event.detail.loaded) / event.detail.total);
    bar.hidden = false;
    bar.value = percent;
    status.textContent = "Uploading… " + formatBytes(event.detail.loaded) + " of " + formatBytes(event.detail.total) + " (" + percent + " %)";
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = event.target.closest && event.target.closest("[data-upload-form]");
    if (form) parts(form).button.setAttribute("aria-busy", "true");
  });
  // A refused upload (413 from the server's size guard) is not swapped by
  // htmx: show its message in the form.
  document.addEventListener("htmx:responseError", function (event) {
    const form = event.target.closest && event.target.closest("[data-upload-form]");
    if (!form) return;
    const { bar, status, button } = parts(form);
    button.removeAttribute("aria-busy");
    bar.hidden = true;
    let message = "The upload failed (" + event.detail.xhr.status + ").";
    try {
      message = JSON.parse(event.detail.xhr.responseText).error.message;
    } catch (ignored) { /* not JSON: keep the generic message */ }
    status.textContent = message;
    status.classList.add("field-error");
  });
})();
