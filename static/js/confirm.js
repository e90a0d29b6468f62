// A form with data-confirm="…" asks before it is sent, and is not sent if
// the answer is Cancel. (An inline onsubmit would need CSP's 'unsafe-inline'.)
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
