// Operator dashboard: apply delivery changes from the Server-Sent Events stream to the log.
(function () {
  "use strict";
  // Cancelling cannot be undone by the supporter: ask first (Retry needs no question).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.action || !/\/cancel$/.test(form.action)) { return; }
    var id = form.action.split("/").slice(-2)[0];
    if (!window.confirm("Cancel delivery " + id + "? It will not be sent.")) {
      event.preventDefault();
    }
  });
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
  function cell(text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    return td;
  }
  function render(d) {
    var row = document.createElement("tr");
    row.dataset.delivery = d.id;
    var link = document.createElement("a");
    link.href = "/operator/deliveries/" + d.id;
    link.textContent = d.id;
    var idCell = document.createElement("td");
    idCell.appendChild(link);
    row.appendChild(idCell);
    row.appendChild(cell(new Date(d.updated_at).toLocaleTimeString(), "updated"));
    row.appendChild(cell(d.campaign));
    row.appendChild(cell(d.target));
    row.appendChild(cell(d.channel));
    var statusCell = cell(d.status, "status state-" + d.status);
    if (d.settlement) {
      var settled = document.createElement("span");
      settled.className = "settlement";
      settled.textContent = " (" + d.settlement.replace("_", " ") + ")";
      statusCell.appendChild(settled);
    }
    row.appendChild(statusCell);
    row.appendChild(cell(String(d.attempts), "attempts"));
    var e = d.last_error;
    row.appendChild(cell(e ? e["class"] + (e.code ? " " + e.code : "") + ": " + e.message : "", "last-error"));
    var actions = cell("", "actions");
    if (retryable[d.status]) { actions.appendChild(actionForm(d, "retry", "Retry")); }
    if (cancellable[d.status]) { actions.appendChild(actionForm(d, "cancel", "Cancel")); }
    row.appendChild(actions);
    row.classList.add("fresh");
    return row;
  }
  var params = new URLSearchParams({ since: table.dataset.since });
  if (query.get("campaign")) { params.set("campaign", query.get("campaign")); }
  var url = "/api/deliveries/stream?" + params.toString();
  var source = new EventSource(url);
  source.addEventListener("open", function () { live.textContent = "(live)"; });
  source.addEventListener("error", function () { live.textContent = "(reconnecting…)"; });
  source.addEventListener("delivery", function (event) {
    var d = JSON.parse(event.data);
    var existing = body.querySelector('tr[data-delivery="' + d.id + '"]');
    if (!matches(d)) { if (existing) { existing.remove(); } return; }
    var row = render(d);
    if (existing) { existing.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
  });
})();
