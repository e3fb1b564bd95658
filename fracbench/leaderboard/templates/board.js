"use strict";
(function () {
  document.documentElement.classList.add("js");
  var data = JSON.parse(document.getElementById("board-data").textContent);
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[role=tab]"));
  var panels = Array.prototype.slice.call(document.querySelectorAll("[role=tabpanel]"));

  function select(key) {
    if (!tabs.some(function (t) { return t.dataset.tab === key; })) { key = tabs.length ? tabs[0].dataset.tab : null; }
    tabs.forEach(function (t) { t.setAttribute("aria-selected", String(t.dataset.tab === key)); });
    panels.forEach(function (p) { p.hidden = p.id !== key; });
  }
  tabs.forEach(function (t) {
    t.addEventListener("click", function () { select(t.dataset.tab); history.replaceState(null, "", "#" + t.dataset.tab); });
  });
  select(decodeURIComponent(location.hash.slice(1)));

  function compare(a, b, type) {
    var na = a === null || a === undefined || a === "", nb = b === null || b === undefined || b === "";
    if (na || nb) { return na === nb ? 0 : (na ? 1 : -1); }
    if (type === "num") { return a - b; }
    return String(a).localeCompare(String(b), undefined, {sensitivity: "base", numeric: true});
  }

  function sortTable(table, th) {
    var rows = data.boards[table.dataset.board].rows;
    var key = th.dataset.key, type = th.dataset.type;
    // The first click sorts best first: descending where a higher value is better
    // (data-better="higher", from the task spec), ascending otherwise; later clicks flip.
    var current = th.getAttribute("aria-sort");
    var dir = current === "ascending" ? "descending" : current === "descending" ? "ascending"
      : (th.dataset.better === "higher" ? "descending" : "ascending");
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var trs = Array.prototype.slice.call(body.rows);
    trs.sort(function (x, y) {
      var a = rows[x.dataset.slug][key], b = rows[y.dataset.slug][key];
      var empty = (a === null || a === undefined || a === "") - (b === null || b === undefined || b === "");
      if (empty) { return empty; }  // missing values stay last in both directions
      var c = compare(a, b, type);
      if (c === 0) { c = rows[x.dataset.slug].rank - rows[y.dataset.slug].rank; return c; }
      return dir === "ascending" ? c : -c;
    });
    trs.forEach(function (tr) { body.appendChild(tr); });
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("th[data-key]").forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () { sortTable(table, th); });
    });
  });
})();
