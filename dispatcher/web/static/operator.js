// Operator dashboard: apply delivery changes from the Server-Sent Events stream to the log.
(function () {
  "use strict";
  // What the script says, in the page's language (written by the server).
  var holder = document.querySelector("[data-words]");
  var words = holder ? JSON.parse(holder.dataset.words) : {};
  // A status or channel in the page's language (the server's words for each).
  function word(value) { return (words.values && words.values[value]) || value; }
  function fill(text, values) {
    Object.keys(values).forEach(function (key) { text = text.replace("%(" + key + ")s", values[key]); });
    return text;
  }
  // Cancelling or rejecting cannot be undone by the supporter: ask first. Retry of one delivery needs
  // no question; acting on a whole selection asks how many it will change.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action") || "";
    var question = null;
    var bulk = /\/bulk\/(retry|cancel)$/.exec(action);
    if (bulk) {
      var count = event.submitter.dataset.count;
      question = fill(bulk[1] === "retry" ? words.ask_bulk_retry : words.ask_bulk_cancel, { n: count });
    } else if (/\/review\/[^/]+\/reject$/.test(action)) {
      question = words.ask_reject;
    } else if (/\/cancel$/.test(action)) {
      var id = action.split("/").slice(-2)[0];
      question = fill(words.ask_cancel, { id: id });
    }
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  // The one time format of every page and of the CLI: 2026-12-02 18:20:44 UTC.
  function when(iso) {
    var d = new Date(iso);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) +
      " " + two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds()) + " UTC";
  }
  // The totals and the chart are drawn by the server; fetch them again when the log moves,
  // at most every two seconds.
  var summary = document.getElementById("summary");
  var refreshing = false;
  var again = false;
  function refreshSummary() {
    if (!summary) { return; }
    if (refreshing) { again = true; return; }  // one more fetch once this one is done
    refreshing = true;
    window.setTimeout(function () {
      again = false;
      fetch(summary.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) { summary.innerHTML = html; } })
        .catch(function () { /* the next change tries again */ })
        .then(function () {
          refreshing = false;
          if (again) { refreshSummary(); }
        });
    }, 2000);
  }
  var table = document.getElementById("delivery-log");
  if (!table || !window.EventSource) { return; }
  var body = table.tBodies[0];
  var csrf = table.dataset.csrf;
  var query = new URLSearchParams(table.dataset.query);
  var retryable = { failed: 1, expired: 1, cancelled: 1, queued: 1 };
  var cancellable = { queued: 1, failed: 1, expired: 1 };
  var live = document.getElementById("live-state");

  function matches(d) {
    return ["campaign", "channel", "status", "target"].every(function (key) {
      var want = query.get(key);
      return !want || String(d[key]) === want;
    });
  }
  function actionForm(d, action, label) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/operator/deliveries/" + d.id + "/" + action;
    [["csrf", csrf], ["back", table.dataset.query]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = pair[0]; input.value = pair[1];
      form.appendChild(input);
    });
    var button = document.createElement("button");
    button.type = "submit"; button.textContent = label;
    form.appendChild(button);
    return form;
  }
  function cell(text, className, label) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (label) { td.dataset.label = label; }
    td.textContent = text;
    return td;
  }
  function render(d) {
    var row = document.createElement("tr");
    row.dataset.delivery = d.id;
    var link = document.createElement("a");
    link.href = "/operator/deliveries/" + d.id;
    link.textContent = d.id;
    var idCell = cell("", null, words.delivery);
    idCell.appendChild(link);
    row.appendChild(idCell);
    var updated = cell("", "updated", words.updated);
    var time = document.createElement("time");
    time.dateTime = d.updated_at;
    time.textContent = when(d.updated_at);
    updated.appendChild(time);
    row.appendChild(updated);
    row.appendChild(cell(d.campaign, null, words.campaign));
    row.appendChild(cell(d.target, null, words.to));
    var channel = word(d.channel);
    row.appendChild(cell(d.provider ? channel + " · " + d.provider : channel, null, words.by));
    var statusCell = cell(word(d.status), "status state-" + d.status);
    if (d.settlement) {
      var settled = document.createElement("span");
      settled.className = "settlement";
      settled.textContent = " (" + d.settlement.replace("_", " ") + ")";
      statusCell.appendChild(settled);
    }
    row.appendChild(statusCell);
    row.appendChild(cell(String(d.attempts), "attempts", words.tries));
    var e = d.last_error;
    row.appendChild(cell(e ? e["class"] + (e.code ? " " + e.code : "") + ": " + e.message : "", "last-error"));
    var actions = cell("", "actions");
    if (retryable[d.status]) { actions.appendChild(actionForm(d, "retry", words.retry)); }
    if (cancellable[d.status]) { actions.appendChild(actionForm(d, "cancel", words.cancel)); }
    row.appendChild(actions);
    row.classList.add("fresh");
    return row;
  }
  var params = new URLSearchParams({ since: table.dataset.since });
  if (query.get("campaign")) { params.set("campaign", query.get("campaign")); }
  var url = "/api/deliveries/stream?" + params.toString();
  var source = new EventSource(url);
  source.addEventListener("open", function () { live.textContent = live.dataset.live; });
  source.addEventListener("error", function () { live.textContent = live.dataset.reconnecting; });
  source.addEventListener("delivery", function (event) {
    var d = JSON.parse(event.data);
    refreshSummary();
    var existing = body.querySelector('tr[data-delivery="' + d.id + '"]');
    if (!matches(d)) { if (existing) { existing.remove(); } return; }
    var row = render(d);
    if (existing) { existing.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
  });
})();
