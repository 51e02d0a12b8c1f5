// outhook console: small enhancements only. Every page works without this
// file; it is loaded from the console's own origin, so a strict
// Content-Security-Policy (script-src 'self') allows it.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  // Choosing another deliverer shows its settings at once, by pressing the
  // form's own "Show its settings" button.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var form = sel.form;
      var button = form && form.querySelector('button[name="action"][value="' + sel.dataset.autosubmit + '"]');
      if (button) {
        button.click();
      }
    });
  });
  // Move focus to the first field with an error, or to the error summary.
  var bad = document.querySelector('[aria-invalid="true"]') || document.getElementById("form-errors");
  if (bad) {
    bad.focus({ preventScroll: false });
  }
});
