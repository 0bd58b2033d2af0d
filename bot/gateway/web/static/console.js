// Small progressive enhancements; every page works without them.
// Character and SMS segment counters: <textarea data-count="ID-of-output" data-prefix="【签名】">
// (data-suffix: text the message carries after the typed part).
(function () {
  "use strict";
  function gsm7(text) { return /^[\u0000-\u007f]*$/.test(text); }
  function segments(text) {
    var n = Array.from(text).length;
    if (gsm7(text)) { return n <= 160 ? 1 : Math.ceil(n / 153); }
    return n <= 70 ? 1 : Math.ceil(n / 67);
  }
  function update(area) {
    var out = document.getElementById(area.dataset.count);
    if (!out) { return; }
    var text = (area.dataset.prefix || "") + area.value + (area.dataset.suffix || "");
    out.textContent = Array.from(text).length + " 字，约 " + segments(text) + " 条短信";
  }
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("textarea[data-count]")) { update(e.target); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-count]").forEach(update);
  });
})();
