// The header's Menu button on a phone: opens and closes the sections and the
// account links (tailor.css hides them below 48rem while the menu is shut).
// Escape closes an open menu and gives the focus back to the button.
(function () {
  "use strict";

  document.documentElement.classList.remove("no-js");
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.querySelector(".nav-toggle");
    const menu = document.getElementById("site-menu");
    if (!button || !menu) return;

    function setOpen(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("open", open);
    }

    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.classList.contains("open")) {
        setOpen(false);
        button.focus();
      }
    });
  });
})();
