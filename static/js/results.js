// Result tables: sort by a column (issue 11 point 1). Tables read fine without
// this file; it only adds a button to each header. Numbers sort as numbers, NULLs
// last; the order is the server's again whenever the result is drawn anew.
(function () {
  "use strict";

  var NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

  function enhance(root) {
    var tables = root.querySelectorAll ? root.querySelectorAll("table.result-table:not([data-sortable])") : [];
    tables.forEach(function (table) {
      table.setAttribute("data-sortable", "");
      table.querySelectorAll("thead th").forEach(function (th, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        button.setAttribute("data-column", String(index));
        button.title = "Sort by " + th.textContent;
        while (th.firstChild) { button.appendChild(th.firstChild); }
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
      });
    });
  }

  function valueOf(row, index) {
    var cell = row.children[index];
    if (!cell || cell.querySelector(".null")) { return null; }
    return cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
  }

  function sort(table, index, numeric, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (row) { return row.children.length > index; });
    rows.sort(function (a, b) {
      var x = valueOf(a, index), y = valueOf(b, index);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      var order;
      if (numeric && NUMBER.test(x.trim()) && NUMBER.test(y.trim())) {
        order = parseFloat(x) - parseFloat(y);
      } else {
        order = x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
      }
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("table.result-table th .sort");
    if (!button) { return; }
    var th = button.closest("th");
    var table = th.closest("table");
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("thead th").forEach(function (other) { other.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    sort(table, Number(button.getAttribute("data-column")), th.classList.contains("num"), descending);
  });

  enhance(document);
  // Results arrive in HTMX answers (a run's result, a polled step).
  document.addEventListener("htmx:load", function (event) { enhance(event.target); });
})();
