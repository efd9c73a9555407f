// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP consoles (common on an internal network) have no Clipboard API.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      copyText(button.getAttribute("data-copy")).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        button.classList.add("copied");
        setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1200);
      });
      return;
    }
    if (event.target.closest("[data-theme-toggle]")) {
      var root = document.documentElement;
      var dark = root.getAttribute("data-theme") === "dark" ||
        (!root.hasAttribute("data-theme") && window.matchMedia("(prefers-color-scheme: dark)").matches);
      var next = dark ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("yomira-theme", next); } catch (e) {}
    }
  });

  // The elapsed clock in the incident header.
  function tickClocks() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      var seconds = Math.max(0, Math.floor(now - Number(el.getAttribute("data-elapsed-since"))));
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
      el.textContent = h ? h + "h " + String(m).padStart(2, "0") + "m" : m + "m " + String(s).padStart(2, "0") + "s";
    });
  }
  setInterval(tickClocks, 1000);

  // Keep the keyboard user's place when their step is swapped for its new version.
  var focusedStepId = null;
  document.addEventListener("htmx:beforeRequest", function () {
    var step = document.activeElement && document.activeElement.closest && document.activeElement.closest(".step");
    focusedStepId = step ? step.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (focusedStepId && (document.activeElement === document.body || !document.activeElement)) {
      var step = document.getElementById(focusedStepId);
      if (step) { step.focus({ preventScroll: true }); }
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-reset-on-success]") && event.detail.successful) {
      form.reset();
    }
    // A heavy probe's Run refused for want of the tick (the panel says why):
    // the tick is the next thing to do, so the keyboard lands on it.
    if (form.matches && form.matches("form.heavy-form") && !event.detail.successful) {
      var tick = form.querySelector("input[name=confirm_heavy]");
      if (tick && !tick.checked && tick.isConnected) { tick.focus(); }
    }
  });

  // A poll and an action can both deliver the same new event: keep one.
  document.addEventListener("htmx:afterSettle", function () {
    var seen = {};
    document.querySelectorAll("#timeline-list > li[id]").forEach(function (li) {
      if (seen[li.id]) { li.remove(); } else { seen[li.id] = true; }
    });
  });

  // A form inside a step (a tick, a skip, a Run, a result's picker) lives in HTML
  // the live poller may redraw while its request is in flight, and the poller
  // itself is replaced by every answer that carries a fresh one. htmx looks up an
  // answer's out-of-band targets from the element that asked; once that element
  // is detached it finds none, and the answer (the preview, the run) is dropped
  // with an oobErrorNoTarget. htmx fires htmx:beforeSwap on the asking element,
  // and from a detached element the event never reaches the document: the guard
  // is therefore put on the element itself when it asks.
  function swapDetachedAnswer(event) {
    var detail = event.detail;
    var asker = detail.elt;
    if (!detail.shouldSwap || !asker || asker.isConnected || !window.htmx) { return; }
    detail.shouldSwap = false;
    // A replaced poller's answer is older than whatever replaced it; its
    // successor asks again with the newer cursor.
    if (asker.id === "poller") { return; }
    if ((asker.getAttribute("hx-swap") || "").trim() === "none") {
      window.htmx.swap(document.body, detail.serverResponse, { swapStyle: "none" });
    }
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var asker = event.detail.elt;
    if (asker && !asker.yomiraGuarded) {
      asker.yomiraGuarded = true;
      asker.addEventListener("htmx:beforeSwap", swapDetachedAnswer);
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var flash = document.getElementById("flash");
    if (!flash) { return; }
    var status = event.detail.xhr.status;
    // The console said why, in the panel that caused it: add nothing generic.
    if (event.detail.xhr.getResponseHeader("X-Console-Explained")) { return; }
    var text = status === 403 ? "Not allowed: your role cannot do that (the refusal was recorded)."
      : status === 409 || status === 400 ? ""
      : "The console did not answer (" + status + "). Try again.";
    if (text) { flash.innerHTML = ""; var p = document.createElement("p"); p.className = "error"; p.textContent = text; flash.appendChild(p); }
  });

  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    if (flash) { flash.innerHTML = '<p class="error">The console is unreachable; your change was not sent.</p>'; }
  });

  // The incident header goes compact once the person scrolls into the work.
  // Two thresholds, so that the header's own shrinking cannot flip it back.
  var checklistPage = document.querySelector(".checklist-page");
  if (checklistPage) {
    var compactQueued = false;
    var compactHeader = function () {
      compactQueued = false;
      var y = window.scrollY;
      if (y > 200) { checklistPage.classList.add("scrolled"); }
      else if (y < 40) { checklistPage.classList.remove("scrolled"); }
    };
    window.addEventListener("scroll", function () {
      if (!compactQueued) { compactQueued = true; window.requestAnimationFrame(compactHeader); }
    }, { passive: true });
    compactHeader();
  }

  // Symptoms and impact confirm the playbook while the incident is open; once
  // it is acknowledged they fold away (unless the person opened them again).
  var context = document.getElementById("context");
  if (context) {
    // A click on its summary is the person's choice ("toggle" also fires when
    // the page is parsed with the section open, so it cannot tell).
    context.querySelector("summary").addEventListener("click", function () {
      context.setAttribute("data-touched", "");
    });
  }
  document.addEventListener("htmx:afterSettle", function () {
    // The header is swapped out of band; read the one now on the page.
    var head = document.getElementById("incident-head");
    if (!head || !context || !context.open || context.hasAttribute("data-touched")) { return; }
    if (!head.classList.contains("status-bar-open")) { context.open = false; }
  });

  // A long <select> of playbooks gets a box that narrows it as the person types
  // ("DBPool" leaves §5): every word typed must appear in an option's text
  // (number, title, alert names). One match left is chosen.
  function filterOptions(box) {
    var select = document.getElementById(box.getAttribute("data-filter-options"));
    if (!select) { return; }
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var matches = [];
    Array.prototype.forEach.call(select.options, function (option) {
      if (!option.value) { return; }
      var text = option.textContent.toLowerCase();
      var hit = words.every(function (w) { return text.indexOf(w) !== -1; });
      option.hidden = !hit;
      if (hit) { matches.push(option); }
    });
    if (matches.length === 1) { select.value = matches[0].value; }
    else if (select.selectedOptions.length && select.selectedOptions[0].hidden) { select.value = ""; }
    var none = document.getElementById(select.id + "-none");
    if (none) { none.hidden = matches.length > 0; }
  }
  document.querySelectorAll("[data-filter-options]").forEach(function (box) { box.hidden = false; });
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-filter-options]")) { filterOptions(event.target); }
  });
  document.addEventListener("keydown", function (event) {
    // Enter in the filter box chooses, it does not send a half-filled form.
    if (event.key === "Enter" && event.target.matches && event.target.matches("[data-filter-options]")) {
      event.preventDefault();
      var select = document.getElementById(event.target.getAttribute("data-filter-options"));
      if (select) { select.focus(); }
    }
  });

  // "/" focuses search; "j"/"k" move between steps; on a step, "d" marks it done,
  // "s" starts a skip, "r" reopens; "n" starts a note.
  // Ctrl+Enter (Cmd+Enter on a Mac) in a text box sends its form: a note is
  // written without reaching for the mouse.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) { return; }
    var box = event.target;
    if ((box.tagName || "").toLowerCase() !== "textarea" || !box.form) { return; }
    event.preventDefault();
    if (box.form.requestSubmit) { box.form.requestSubmit(); } else { box.form.submit(); }
  });

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.metaKey || event.ctrlKey || event.altKey) {
      return;
    }
    if (event.key === "/") {
      var search = document.querySelector("[data-hotkey='/']");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    var step = document.activeElement && document.activeElement.closest && document.activeElement.closest(".step");
    if (step && (event.key === "d" || event.key === "r")) {
      var button = step.querySelector("[data-key='" + event.key + "']");
      if (button) { event.preventDefault(); button.click(); }
      return;
    }
    if (step && event.key === "s") {
      var reason = step.querySelector("[data-key='s']");
      if (reason) { event.preventDefault(); reason.focus(); }
      return;
    }
    if (event.key === "n") {
      var note = document.querySelector("[data-key='n']");
      if (note) { event.preventDefault(); note.focus(); }
      return;
    }
    if (event.key === "j" || event.key === "k") {
      var steps = Array.prototype.slice.call(document.querySelectorAll(".step"));
      if (!steps.length) { return; }
      var current = steps.indexOf(document.activeElement.closest && document.activeElement.closest(".step"));
      var next = event.key === "j" ? Math.min(current + 1, steps.length - 1) : Math.max(current - 1, 0);
      steps[next].focus({ preventScroll: true });
      steps[next].scrollIntoView({ block: "nearest" });
      // The sticky header's height varies (its buttons wrap on a phone): make
      // sure the step's title is below it, not under it.
      var head = document.getElementById("incident-head");
      if (head) {
        var hidden = head.getBoundingClientRect().bottom + 8 - steps[next].getBoundingClientRect().top;
        if (hidden > 0) { window.scrollBy(0, -hidden); }
      }
    }
  });
})();
