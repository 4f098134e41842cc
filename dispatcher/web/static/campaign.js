// Live weighted-length counter for the X post: asks the server, which applies the same
// composition (handles + text + signature) and weighting it enforces at intake.
(function () {
  "use strict";
  var form = document.getElementById("appeal-form");
  if (!form) { return; }
  var tweet = document.getElementById("tweet");
  var name = document.getElementById("name");
  var counter = document.getElementById("tweet-count");
  var url = "/api/campaigns/" + encodeURIComponent(form.dataset.campaign) + "/tweet-length";
  var timer = null;
  function update() {
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: tweet.value, name: name.value })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (!data) { return; }
      counter.textContent = data.weighted_length + " / " + data.limit +
        " (with the officials' handles and your name)" + (data.fits ? "" : " — too long for X");
      counter.classList.toggle("over", !data.fits);
    }).catch(function () { /* offline: the server still checks on send */ });
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(update, 200); }
  tweet.addEventListener("input", schedule);
  name.addEventListener("input", schedule);
  update();
})();
