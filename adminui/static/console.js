// outhook console: small enhancements only. Every page works without this
// file; it is loaded from the console's own origin, so a strict
// Content-Security-Policy (script-src 'self') allows it.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  // After a refused form, move the focus to the summary of its errors, so
  // that keyboard and screen reader users start there.
  var summary = document.getElementById("form-errors");
  if (summary) {
    summary.focus();
  }
});
