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

  // "/" focuses search; "j"/"k" move between steps.
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
    if (event.key === "j" || event.key === "k") {
      var steps = Array.prototype.slice.call(document.querySelectorAll(".step"));
      if (!steps.length) { return; }
      var current = steps.indexOf(document.activeElement.closest && document.activeElement.closest(".step"));
      var next = event.key === "j" ? Math.min(current + 1, steps.length - 1) : Math.max(current - 1, 0);
      steps[next].focus();
      steps[next].scrollIntoView({ block: "nearest" });
    }
  });
})();
