/* remixq dashboard: live progress by polling /live every 2 s (no reload), a full-size
   image viewer, and a confirmation before destructive forms. Everything works without it. */
(function () {
  "use strict";
  var POLL_MS = 2000;

  function liveIds() {
    var ids = [];
    document.querySelectorAll("[data-live-campaign]").forEach(function (el) {
      var id = el.getAttribute("data-live-campaign");
      if (ids.indexOf(id) < 0) ids.push(id);
    });
    return ids;
  }

  function setText(root, field, value) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
      var text = value === null || value === undefined ? "—" : String(value);
      if (el.textContent !== text) el.textContent = text;
    });
  }

  function usd(value) { return value === null || value === undefined ? "—" : "$" + value; }

  function apply(c) {
    document.querySelectorAll('[data-live-campaign="' + c.id + '"]').forEach(function (root) {
      c.segments.forEach(function (s) {
        root.querySelectorAll('rect[data-status="' + s.status + '"]').forEach(function (rect) {
          rect.setAttribute("x", s.x);
          rect.setAttribute("width", s.width);
        });
      });
      root.querySelectorAll('[data-field="progressbar"]').forEach(function (bar) {
        bar.setAttribute("aria-valuenow", c.done);
        bar.setAttribute("aria-valuemax", c.jobs);
      });
      setText(root, "progress", c.progress);
      setText(root, "state", c.state);
      setText(root, "images", c.images);
      setText(root, "spent_usd", usd(c.spent_usd));
      setText(root, "budget_usd", usd(c.budget_usd));
      setText(root, "estimated_usd", usd(c.estimated_usd));
      setText(root, "finished_text", c.finished_text);
      setText(root, "pause_reason", c.pause_reason || "");
      root.setAttribute("data-outcome", c.outcome);
    });
    setText(document, "count-failed", c.counts.failed || 0);
  }

  function poll() {
    var ids = liveIds();
    if (!ids.length) return;
    var query = ids.map(function (id) { return "campaign=" + encodeURIComponent(id); }).join("&");
    fetch("/live?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (!body) return true;
        body.campaigns.forEach(apply);
        // Once nothing on the page can change by itself, stop asking.
        return body.campaigns.some(function (c) { return c.outcome === "running"; });
      })
      .catch(function () { return true; /* the next poll tries again */ })
      .then(function (again) { if (again) window.setTimeout(poll, POLL_MS); });
  }

  function viewer() {
    var dialog = document.querySelector("dialog.viewer");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var img = dialog.querySelector("img");
    var caption = dialog.querySelector(".viewer-caption");
    document.querySelectorAll("a.zoom").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        img.src = link.getAttribute("href");
        img.alt = link.getAttribute("data-caption") || "";
        caption.textContent = link.getAttribute("data-caption") || "";
        dialog.showModal();
      });
    });
    dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    viewer();
    confirmations();
    if (liveIds().length) window.setTimeout(poll, POLL_MS);
  });
})();
