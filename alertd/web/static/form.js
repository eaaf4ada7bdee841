// The raise form never loses work to an oversized photo: a file over the limit is refused
// here, in the form, before anything is sent (the server's own limit answers without script).
// The form is novalidate (the server's messages are the full ones), so this checks on submit.
(function () {
  "use strict";
  var input = document.getElementById("photo");
  if (!input || !input.form) { return; }
  var limit = Number(input.dataset.maxBytes || 0);
  var note = document.createElement("p");
  note.className = "field-error";
  note.id = "photo-too-large";
  note.setAttribute("role", "alert");

  function problem() {
    var file = input.files && input.files[0];
    if (!file || !limit || file.size <= limit) { return ""; }
    var mb = function (n) { return (n / 1000000).toFixed(1) + " MB"; };
    return "This photo is " + mb(file.size) + "; the limit is " + mb(limit) +
      ". Choose a smaller photo; everything else you typed is kept.";
  }

  function show() {
    var message = problem();
    input.setCustomValidity(message);
    if (message) {
      note.textContent = message;
      input.setAttribute("aria-invalid", "true");
      if (!note.isConnected) { input.insertAdjacentElement("afterend", note); }
    } else if (note.isConnected) {
      note.remove();
      input.removeAttribute("aria-invalid");
    }
    return message;
  }

  input.addEventListener("change", show);
  input.form.addEventListener("submit", function (event) {
    if (show()) {
      event.preventDefault();
      input.focus();
    }
  });
}());

// A refused form opens at its error summary, so a screen reader and a keyboard start there.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
}());
