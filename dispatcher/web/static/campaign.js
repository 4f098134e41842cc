// The campaign page: focus on the first problem after a refused Send, and live counters
// for the letter and the post that agree with the server to the character.
(function () {
  "use strict";
  var form = document.getElementById("appeal-form");
  var summary = document.getElementById("error-summary");
  if (summary) {
    // The first field with a problem (the summary above it is announced as an alert).
    var first = document.querySelector("[aria-invalid=true]");
    (first || summary).focus();
  }
  if (!form) { return; }

  // The letter: as intake counts it, in characters (code points, not UTF-16 units), after
  // line endings become "\n" and the ends are trimmed.
  var message = document.getElementById("message");
  var messageCount = document.getElementById("message-count");
  var limit = parseInt(message.dataset.limit, 10);
  // The sentences, in the page's language, as the server wrote them ("one" and "other").
  var words = JSON.parse(form.dataset.words);
  var numbers = new Intl.NumberFormat(document.documentElement.lang);
  function say(key, n, count, max) {
    var forms = words[key];
    var text = (n === 1 && forms.one) ? forms.one : forms.other;
    return text.replace("%(n)s", numbers.format(n)).replace("%(count)s", numbers.format(count))
      .replace("%(limit)s", numbers.format(max));
  }
  function countLetter() {
    var text = message.value.replace(/\r\n?/g, "\n").trim();
    var used = Array.from(text).length;
    var over = used - limit;
    messageCount.textContent = over > 0
      ? say("letter_over", over, used, limit)
      : say("letter_left", limit - used, used, limit);
    messageCount.classList.toggle("over", over > 0);
  }
  message.addEventListener("input", countLetter);
  countLetter();

  // The post: weighed by the server with the same rule it enforces at intake, for the
  // officials ticked for X (each gets its own handles in front).
  var tweet = document.getElementById("tweet");
  var name = document.getElementById("name");
  var tweetCount = document.getElementById("tweet-count");
  var url = "/api/campaigns/" + encodeURIComponent(form.dataset.campaign) + "/tweet-length";
  var timer = null;
  function chosenOnX() {
    var boxes = form.querySelectorAll("input[name=pick]:checked");
    var targets = [];
    boxes.forEach(function (box) {
      var parts = box.value.split(":");
      if (parts[1] === "twitter") { targets.push(parts[0]); }
    });
    return targets;
  }
  function weighPost() {
    var targets = chosenOnX();
    if (targets.length === 0) {
      tweetCount.textContent = say("post_none", 0, 0, 0);
      tweetCount.classList.remove("over");
      return;
    }
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: tweet.value, name: name.value, targets: targets })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (!data) { return; }
      var over = data.weighted_length - data.limit;
      tweetCount.textContent = over > 0
        ? say("post_over", over, data.weighted_length, data.limit)
        : say("post_fits", 0, data.weighted_length, data.limit);
      tweetCount.classList.toggle("over", over > 0);
    }).catch(function () { /* offline: the server still checks on Send */ });
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(weighPost, 200); }
  tweet.addEventListener("input", schedule);
  name.addEventListener("input", schedule);
  form.addEventListener("change", function (event) {
    if (event.target.name === "pick") { schedule(); }
  });
  weighPost();
})();
