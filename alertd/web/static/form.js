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
  if (!summary) { return; }
  summary.focus();
  // Following a link puts the cursor in the field, not only the field in view.
  summary.addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#']");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (field && field.focus) {
      event.preventDefault();
      field.scrollIntoView({block: "center"});
      field.focus();
      history.replaceState(null, "", link.getAttribute("href"));
    }
  });
}());

// The criteria checklist follows the plan as it is chosen, without a save: every plan's list is
// on the page, and only the chosen one is shown and sent (a disabled fieldset sends nothing).
// Without script, the "Show this plan's checklist" button redraws the form instead.
(function () {
  "use strict";
  var select = document.getElementById("jurisdiction");
  var lists = document.querySelectorAll(".plan-checklist");
  if (!select || !lists.length) { return; }
  ["show-plan", "show-plan-hint"].forEach(function (id) {
    var element = document.getElementById(id);
    if (element) { element.hidden = true; }
  });
  function follow() {
    Array.prototype.forEach.call(lists, function (list) {
      var chosen = list.dataset.plan === select.value;
      list.hidden = !chosen;
      list.disabled = !chosen;
    });
  }
  select.addEventListener("change", follow);
  follow();
}());
