/* Formwork page behaviour: the mobile menu and the quick-search dropdown. Plain JS, no framework. */
(function () {
  "use strict";
  function setNav(open) {
    document.body.classList.toggle("nav-open", open);
    var btn = document.querySelector(".menu-toggle");
    if (btn) btn.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("click", function (ev) {
    var toggle = ev.target.closest(".menu-toggle");
    if (toggle) { setNav(!document.body.classList.contains("nav-open")); return; }
    if (ev.target.closest(".scrim")) { setNav(false); }
    var results = document.getElementById("search-results");
    if (results && !ev.target.closest(".topbar-search")) { results.innerHTML = ""; }
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      if (!d.contains(ev.target)) d.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") {
      setNav(false);
      var results = document.getElementById("search-results");
      if (results) results.innerHTML = "";
      document.querySelectorAll("details.menu[open]").forEach(function (d) { d.removeAttribute("open"); });
    }
    if (ev.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
      var q = document.getElementById("quick-search");
      if (q) { ev.preventDefault(); q.focus(); }
    }
  });
})();
