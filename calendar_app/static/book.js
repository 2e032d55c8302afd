// The booking form checks the proposed time while the caregiver types, and shows what it
// clashes with in the live region; without this script the "Kontrollera" button does it.
(function () {
  "use strict";
  var form = document.querySelector("form.booking-form");
  var live = document.getElementById("check-live");
  if (!form || !live || !window.fetch || !window.FormData) {
    return;
  }
  var timer = null;
  var asked = 0;

  function check() {
    var data = new FormData(form);
    if (!data.get("date") || !data.get("start") || !data.get("minutes")) {
      return;
    }
    data.set("action", "check");
    var mine = ++asked;
    fetch(window.location.href, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      if (mine === asked) {  // only the answer to the latest question
        live.innerHTML = html;
      }
    }).catch(function () { /* the button still works */ });
  }

  form.addEventListener("input", function (event) {
    var name = event.target && event.target.name;
    if (name === "date" || name === "start" || name === "minutes") {
      window.clearTimeout(timer);
      timer = window.setTimeout(check, 400);
    }
  });
})();
