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

/* Record forms: reference pickers, subtable rows, live formulas. */
(function () {
  "use strict";
  var csrf = function () {
    var el = document.querySelector('input[name="csrf_token"]');
    return el ? el.value : "";
  };

  /* --- reference picker: type to search, pick with mouse or keyboard --- */
  var timers = new WeakMap();
  function pickerOf(el) { return el.closest(".ref-picker"); }
  function closeResults(picker) {
    var box = picker.querySelector(".ref-results");
    box.innerHTML = "";
    picker.querySelector(".ref-input").setAttribute("aria-expanded", "false");
  }
  function choose(picker, option) {
    picker.querySelector(".ref-value").value = option.dataset.id;
    picker.querySelector(".ref-input").value = option.dataset.title;
    closeResults(picker);
    picker.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function search(input) {
    var picker = pickerOf(input);
    var url = picker.dataset.lookup + "?q=" + encodeURIComponent(input.value.trim());
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (document.activeElement !== input) return;
        picker.querySelector(".ref-results").innerHTML = html;
        input.setAttribute("aria-expanded", html ? "true" : "false");
      });
  }
  document.addEventListener("input", function (ev) {
    var input = ev.target;
    if (!input.classList || !input.classList.contains("ref-input")) return;
    var picker = pickerOf(input);
    // Until an option is picked, the typed text is sent: the engine accepts a unique title too.
    picker.querySelector(".ref-value").value = input.value.trim();
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(function () { search(input); }, 200));
  });
  document.addEventListener("focusin", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("ref-input")) search(ev.target);
  });
  document.addEventListener("mousedown", function (ev) {
    var option = ev.target.closest(".ref-option");
    if (option) { ev.preventDefault(); choose(pickerOf(option), option); }
  });
  document.addEventListener("focusout", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("ref-input")) {
      var picker = pickerOf(ev.target);
      setTimeout(function () { if (!picker.contains(document.activeElement)) closeResults(picker); }, 150);
    }
  });
  document.addEventListener("keydown", function (ev) {
    var input = ev.target;
    if (!input.classList || !input.classList.contains("ref-input")) return;
    var picker = pickerOf(input);
    var options = Array.prototype.slice.call(picker.querySelectorAll(".ref-option"));
    if (!options.length) return;
    var current = options.findIndex(function (o) { return o.classList.contains("active"); });
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      var next = ev.key === "ArrowDown" ? Math.min(current + 1, options.length - 1) : Math.max(current - 1, 0);
      options.forEach(function (o, i) { o.classList.toggle("active", i === next); });
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      choose(picker, options[current >= 0 ? current : 0]);
    }
  });

  /* --- subtable rows --- */
  document.addEventListener("click", function (ev) {
    var add = ev.target.closest(".add-row");
    if (add) {
      var sub = add.closest(".subtable");
      var index = parseInt(sub.dataset.nextIndex || "0", 10);
      sub.dataset.nextIndex = String(index + 1);
      var html = sub.querySelector("template").innerHTML.replace(/__INDEX__/g, String(index));
      var body = sub.querySelector("tbody");
      body.insertAdjacentHTML("beforeend", html);
      var first = body.lastElementChild.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
      schedulePreview(sub.closest("form"));
      return;
    }
    var remove = ev.target.closest(".remove-row");
    if (remove) {
      var form = remove.closest("form");
      remove.closest("tr").remove();
      schedulePreview(form);
    }
  });

  /* --- live formulas: the server computes them exactly as on save --- */
  var previewTimers = new WeakMap();
  function schedulePreview(form) {
    if (!form || !form.dataset.preview) return;
    if (!form.querySelector("[data-formula], [data-row-formula]")) return;
    clearTimeout(previewTimers.get(form));
    previewTimers.set(form, setTimeout(function () { runPreview(form); }, 250));
  }
  function runPreview(form) {
    var data = new FormData(form);
    Array.from(data.keys()).forEach(function (k) { if (data.get(k) instanceof File) data.delete(k); });
    fetch(form.dataset.preview, { method: "POST", body: data, credentials: "same-origin",
                                  headers: { "X-CSRFToken": csrf() } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (res) {
        if (!res) return;
        Object.keys(res.fields || {}).forEach(function (name) {
          form.querySelectorAll('[data-formula="' + name + '"]').forEach(function (el) {
            el.textContent = res.fields[name] || "—";
          });
        });
        Object.keys(res.rows || {}).forEach(function (name) {
          var sub = form.querySelector('[data-subtable="' + name + '"]');
          if (!sub) return;
          var trs = sub.querySelectorAll("tbody tr.sub-row");
          (res.rows[name] || []).forEach(function (row, i) {
            if (!trs[i]) return;
            Object.keys(row).forEach(function (f) {
              var out = trs[i].querySelector('[data-row-formula="' + f + '"]');
              if (out) out.textContent = row[f];
            });
          });
        });
      })
      .catch(function () {});
  }
  document.addEventListener("input", function (ev) {
    var form = ev.target.closest && ev.target.closest("form[data-preview]");
    if (form) schedulePreview(form);
  });
  document.addEventListener("change", function (ev) {
    var form = ev.target.closest && ev.target.closest("form[data-preview]");
    if (form) schedulePreview(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-preview]").forEach(schedulePreview);
  });
})();

/* Forms marked data-once (approve, reject, mark done) send once: a double click is one request.
   Selects and checkboxes marked data-autosubmit apply their filter form at once. */
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (ev.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-once")) return;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    setTimeout(function () {
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) el.form.requestSubmit();
  });
})();

/* A record's stage path scrolls sideways on a phone: start with the current stage in view. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  document.querySelectorAll(".stage-path").forEach(function (path) {
    var current = path.querySelector("[aria-current=step]");
    if (current && path.scrollWidth > path.clientWidth) {
      path.scrollLeft = Math.max(0, current.offsetLeft - path.offsetLeft - 24);
    }
  });
});
