// Keeps the alert page's delivery progress current without a reload: fetches the section's
// fragment every two seconds while anything is still going out, every fifteen once it is done
// (a new version may be approved by someone else). Without JavaScript, a reload shows the same.
(function () {
  "use strict";
  var RUNNING_MS = 2000, IDLE_MS = 15000;

  function schedule() {
    var section = document.getElementById("progress");
    if (!section) { return; }
    var wait = section.dataset.finished === "true" ? IDLE_MS : RUNNING_MS;
    window.setTimeout(refresh, wait);
  }

  function refresh() {
    var section = document.getElementById("progress");
    if (!section || document.hidden) { schedule(); return; }
    fetch(section.dataset.url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#progress");
          if (fresh) {
            section.replaceWith(fresh);
            markSent(fresh);
            if (window.alertdLocalTime) { window.alertdLocalTime(fresh); }
          }
        }
      })
      .catch(function () { /* The next poll tries again. */ })
      .then(schedule);
  }

  // The versions table's "Sent" column: when each version's first message really left.
  function markSent(section) {
    section.querySelectorAll(".version-progress[data-first-sent]").forEach(function (version) {
      var sent = version.dataset.firstSent, iso = version.dataset.firstSentIso;
      var cell = document.querySelector('td.went-out[data-seq="' + version.dataset.seq + '"]');
      if (sent && cell) {
        var time = document.createElement("time");
        time.setAttribute("datetime", iso);
        time.setAttribute("data-local", "");
        time.textContent = sent;
        cell.replaceChildren(time);
        if (window.alertdLocalTime) { window.alertdLocalTime(cell); }
      }
    });
  }

  schedule();
}());
