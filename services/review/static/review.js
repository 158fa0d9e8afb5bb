// Keyboard shortcuts for the review page. Every action is also a plain form button,
// so the page works without this script.
(function () {
  "use strict";

  var submitted = false;

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // One action per page: a second key press before the next page loads would act on
  // an item the reviewer no longer holds.
  function submit(form, button) {
    if (submitted || !form) return;
    submitted = true;
    if (button && typeof form.requestSubmit === "function") {
      form.requestSubmit(button);
    } else if (button) {
      button.click();
    } else if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.repeat) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var key = event.key;
    if (/^[1-9]$/.test(key)) {
      var button = document.querySelector('#label-form button[data-key="' + key + '"]');
      if (button) {
        event.preventDefault();
        submit(document.getElementById("label-form"), button);
      }
    } else if (key === "s" || key === "S") {
      var skip = document.getElementById("skip-form");
      if (skip) {
        event.preventDefault();
        submit(skip, null);
      }
    } else if (key === "u" || key === "U") {
      var undo = document.getElementById("undo-form");
      if (undo) {
        event.preventDefault();
        submit(undo, null);
      }
    } else if (key === "r" || key === "R") {
      var refresh = document.getElementById("refresh");
      if (refresh) {
        event.preventDefault();
        submitted = true;
        window.location.assign(refresh.getAttribute("href"));
      }
    }
  });

  // Back/forward cache restores this page with the flag set; clear it.
  window.addEventListener("pageshow", function () {
    submitted = false;
  });
})();
