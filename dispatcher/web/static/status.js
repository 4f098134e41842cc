// Status page: refresh each delivery's state and the campaign total until all are settled.
(function () {
  "use strict";
  var copy = document.getElementById("copy-link");
  if (copy) {
    copy.addEventListener("click", function () {
      var said = document.getElementById("copied");
      var done = function () { said.textContent = copy.dataset.copied; };
      var failed = function () { said.textContent = copy.dataset.copyFailed; };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(copy.dataset.url).then(done, failed);
      } else {
        failed();
      }
    });
  }
  var table = document.getElementById("appeal-status");
  if (!table) { return; }
  // The words for each status, in the page's language (the server wrote them).
  var words = JSON.parse(table.dataset.words);
  var numbers = new Intl.NumberFormat(document.documentElement.lang);
  function of(done, goal) {
    return table.dataset.of.replace("%(done)s", numbers.format(done))
      .replace("%(goal)s", numbers.format(goal));
  }
  var settled = { delivered: 1, failed: 1, expired: 1, cancelled: 1, handed_off: 1 };
  var appeal = table.dataset.appeal;
  var campaign = table.dataset.campaign;
  function refresh() {
    var status = null;
    // The report is read after the appeal, so the total never lags the rows it shows.
    fetch("/api/appeals/" + encodeURIComponent(appeal) + "?token=" +
      encodeURIComponent(table.dataset.token)).then(function (r) { return r.json(); })
    .then(function (data) {
      status = data;
      return fetch("/api/campaigns/" + encodeURIComponent(campaign) + "/report");
    }).then(function (r) { return r.json(); }).then(function (report) {
      var done = true;
      status.deliveries.forEach(function (d) {
        var row = table.querySelector('tr[data-delivery="' + d.id + '"]');
        if (!row) { return; }
        var cell = row.cells[2];
        cell.className = "state state-" + d.status;
        cell.textContent = "";
        var word = document.createElement("span");
        word.className = "word";
        word.textContent = words[d.status] || d.status;
        cell.appendChild(word);
        if (d.reason) {
          var why = document.createElement("span");
          why.className = "reason";
          why.textContent = d.reason;
          cell.appendChild(why);
        }
        if (d.hand_off) {
          var post = document.createElement("a");
          post.className = "button hand-off";
          post.href = d.hand_off;
          post.rel = "noopener";
          post.textContent = table.dataset.postWord;
          cell.appendChild(post);
        }
        if (!settled[d.status]) { done = false; }
      });
      document.getElementById("total-actions").textContent = numbers.format(report.actions);
      var goal = document.getElementById("goal");
      if (goal) {
        var total = report.actions + report.self_reported.total;
        goal.value = Math.min(total, goal.max);
        goal.textContent = of(total, goal.max);
        document.getElementById("goal-count").textContent = of(total, goal.max);
      }
      if (!done) { setTimeout(refresh, 1000); }
    }).catch(function () { setTimeout(refresh, 3000); });
  }
  refresh();
})();
