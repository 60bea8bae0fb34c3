/* Kanban board (R26): HTML5 drag and drop and each card's "move to" form, both POSTing the move to
   the server, which asks the engine. A refused move leaves the card where it was and lists every unmet
   criterion on the card, with a link to fill them in. Plain JS, no framework, no CDN. */
(function () {
  "use strict";
  var dragged = null;

  function boardEl() { return document.querySelector(".board"); }
  function colOf(el) { return el ? el.closest(".board-col") : null; }
  function colByStage(stage) {
    var cols = document.querySelectorAll(".board-col");
    for (var i = 0; i < cols.length; i++) { if (cols[i].dataset.stage === stage) return cols[i]; }
    return null;
  }
  var toastTimer = null;
  function announce(text, visible) {
    var el = document.getElementById("board-status");
    if (!el) return;
    el.textContent = "";
    el.classList.toggle("show", !!visible);
    setTimeout(function () { el.textContent = text; }, 50);
    clearTimeout(toastTimer);
    if (visible) toastTimer = setTimeout(function () { el.classList.remove("show"); }, 4000);
  }
  function clearErrors() {
    document.querySelectorAll(".deal-card .move-error").forEach(function (box) { box.hidden = true; box.innerHTML = ""; });
    document.querySelectorAll(".refused").forEach(function (el) { el.classList.remove("refused"); });
  }

  function showError(card, stage, res) {
    var box = card.querySelector(".move-error");
    var board = boardEl();
    box.innerHTML = "";
    var head = document.createElement("div");
    head.className = "move-error-head";
    var title = document.createElement("strong");
    title.textContent = res.title || board.dataset.errorTitle;
    head.appendChild(title);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-ghost btn-icon btn-xs move-error-close";
    close.setAttribute("aria-label", board.dataset.closeLabel || "Close");
    close.textContent = "×";
    head.appendChild(close);
    box.appendChild(head);
    var list = document.createElement("ul");
    (res.messages || []).forEach(function (m) {
      var li = document.createElement("li");
      li.textContent = m;
      list.appendChild(li);
    });
    box.appendChild(list);
    if (res.fix_url) {
      var link = document.createElement("a");
      link.className = "btn btn-sm btn-primary move-fix";
      link.href = res.fix_url;
      link.textContent = res.fix_label;
      box.appendChild(link);
    }
    box.hidden = false;
    card.classList.add("refused");
    var col = colByStage(stage);
    if (col) col.classList.add("refused");
    announce((res.title || "") + ": " + (res.messages || []).join("; "));
    var focus = box.querySelector(".move-fix") || close;
    focus.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function refresh(focusId, message) {
    var board = boardEl();
    var url = board.dataset.boardUrl;
    url += (url.indexOf("?") >= 0 ? "&" : "?") + "partial=1";
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.statusText); return r.text(); })
      .then(function (html) {
        document.getElementById("board").innerHTML = html;
        var card = document.getElementById("card-" + focusId);
        if (card) {
          card.classList.add("just-moved");
          var link = card.querySelector(".deal-title");
          if (link) link.focus({ preventScroll: true });
          card.scrollIntoView({ block: "nearest", inline: "nearest" });
        }
        // earlier flashes are about an earlier action
        document.querySelectorAll(".container > .alert").forEach(function (a) { a.remove(); });
        announce(message, true);
      })
      .catch(function () { window.location.reload(); });
  }

  function move(card, stage) {
    var form = card && card.querySelector(".move-form");
    var from = colOf(card);
    if (!form || !stage || (from && from.dataset.stage === stage) || card.classList.contains("busy")) return;
    var data = new FormData(form);
    data.set("stage", stage);
    clearErrors();
    card.classList.add("busy");
    card.setAttribute("aria-busy", "true");
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": data.get("csrf_token") || "" }
    }).then(function (r) {
      return r.json().catch(function () {
        return { ok: false, title: boardEl().dataset.errorTitle, messages: [r.status + " " + r.statusText] };
      });
    }).then(function (res) {
      card.classList.remove("busy");
      card.removeAttribute("aria-busy");
      if (res.ok) { refresh(card.dataset.id, res.message); } else { showError(card, stage, res); }
    }).catch(function (err) {
      card.classList.remove("busy");
      card.removeAttribute("aria-busy");
      showError(card, stage, { title: boardEl().dataset.errorTitle, messages: [String(err)] });
    });
  }

  document.addEventListener("dragstart", function (ev) {
    var card = ev.target.closest && ev.target.closest(".deal-card[draggable='true']");
    if (!card) return;
    var open = card.querySelector("details.move-menu[open]");
    if (open) open.removeAttribute("open");
    dragged = card;
    ev.dataTransfer.effectAllowed = "move";
    ev.dataTransfer.setData("text/plain", card.dataset.id);
    card.classList.add("dragging");
    var board = boardEl();
    if (board) board.classList.add("is-dragging");
  });
  document.addEventListener("dragend", function () {
    document.querySelectorAll(".deal-card.dragging").forEach(function (c) { c.classList.remove("dragging"); });
    dragged = null;
    document.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    var board = boardEl();
    if (board) board.classList.remove("is-dragging");
  });
  document.addEventListener("dragover", function (ev) {
    var col = colOf(ev.target);
    if (!dragged || !col || col === colOf(dragged)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".drop-target").forEach(function (c) { if (c !== col) c.classList.remove("drop-target"); });
    col.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (ev) {
    var col = colOf(ev.target);
    if (col && !col.contains(ev.relatedTarget)) col.classList.remove("drop-target");
  });
  document.addEventListener("drop", function (ev) {
    var col = colOf(ev.target);
    if (!dragged || !col) return;
    ev.preventDefault();
    col.classList.remove("drop-target");
    var card = dragged;
    dragged = null;
    move(card, col.dataset.stage);
  });
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("move-form") || !form.closest(".board")) return;
    ev.preventDefault();
    var stage = ev.submitter && ev.submitter.name === "stage" ? ev.submitter.value : "";
    var menu = form.querySelector("details.move-menu");
    if (menu) menu.removeAttribute("open");
    move(form.closest(".deal-card"), stage);
  });
  document.addEventListener("click", function (ev) {
    var close = ev.target.closest(".move-error-close");
    if (!close) return;
    var card = close.closest(".deal-card");
    clearErrors();
    var toggle = card && card.querySelector(".move-toggle");
    if (toggle) toggle.focus();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && document.querySelector(".move-error:not([hidden])")) clearErrors();
  });
})();
