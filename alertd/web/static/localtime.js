// Shows every <time data-local> in the browser's own time zone. The server wrote it in
// ALERTD_TIMEZONE, which is what a page without JavaScript keeps.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false, timeZoneName: "short"
  });

  function localise(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        element.title = element.textContent;  // The server's wording stays on hover.
        element.textContent = format.format(moment);
        element.removeAttribute("data-local");
      }
    });
  }

  // A new form's UTC offset starts at the browser's own, unless the officer already chose.
  function defaultOffsets() {
    var minutes = -new Date().getTimezoneOffset();
    var sign = minutes < 0 ? "-" : "+";
    var abs = Math.abs(minutes);
    var offset = sign + String(Math.floor(abs / 60)).padStart(2, "0") + ":" +
      String(abs % 60).padStart(2, "0");
    document.querySelectorAll("select[data-default-offset]").forEach(function (select) {
      var option = select.querySelector('option[value="' + offset + '"]');
      if (option) { select.value = offset; }
    });
  }

  window.alertdLocalTime = localise;
  localise(document);
  defaultOffsets();
}());
