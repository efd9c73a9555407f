// Applied before first paint so a dark-mode responder never sees a white flash.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("yomira-theme"); } catch (e) {}
  if (saved === "dark" || saved === "light") {
    document.documentElement.setAttribute("data-theme", saved);
  }
})();
