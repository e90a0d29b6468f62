// A button with data-copy="<selector>" copies that element's text to the
// clipboard and says so in the [data-copy-status] beside it (read aloud: the
// status is a live region).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    const status = button.parentElement.querySelector("[data-copy-status]");
    if (!source) return;
    function say(text) {
      if (status) status.textContent = text;
    }
    navigator.clipboard.writeText(source.textContent.trim()).then(
      function () { say("Copied."); },
      function () { say("Copying was refused: select the token and copy it by hand."); }
    );
  });
})();
