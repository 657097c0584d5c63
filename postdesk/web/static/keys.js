/* Postdesk's keyboard shortcuts and presence checks: an enhancement; every page works without it.
   Queue: j/k move the selection, o (or Enter) opens it, e closes the selected ticket.
   Ticket: j/k move between messages, e closes the ticket, r opens and focuses the reply form (#reply, or an
   element of class "reply": a form, or a <details> holding one) if there is one.
   The ticket page also tells the server every few seconds that this agent is here, and shows who else is. */
(function () {
  "use strict";
  var csrf = (document.querySelector("meta[name=csrf]") || {}).content || "";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(target.tagName));
  }

  function post(action, fields) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    fields.csrf = csrf;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function selector(items, onMove) {
    var current = -1;
    return function (step) {
      if (!items.length) return null;
      if (current >= 0) items[current].classList.remove("selected");
      current = Math.max(0, Math.min(items.length - 1, current + step));
      var item = items[current];
      item.classList.add("selected");
      item.scrollIntoView({block: "nearest"});
      if (onMove) onMove(item);
      return item;
    };
  }

  function replyForm() {
    return document.getElementById("reply") || document.querySelector(".reply");
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("table.tickets tbody tr[data-ticket]"));
  var messages = Array.prototype.slice.call(document.querySelectorAll("section.message"));
  var moveRow = selector(rows), moveMessage = selector(messages);
  var selectedRow = function () { return document.querySelector("table.tickets tr.selected"); };

  var queueKeys = {
    j: function () { moveRow(1); },
    k: function () { moveRow(-1); },
    o: function () { var row = selectedRow(); if (row) row.querySelector("a").click(); },
    Enter: function () { var row = selectedRow(); if (row) row.querySelector("a").click(); },
    e: function () {
      var row = selectedRow();
      if (row) post("/tickets/" + row.dataset.ticket + "/status",
                    {status: "closed", next: location.pathname + location.search});
    }
  };
  var ticketKeys = {
    j: function () { moveMessage(1); },
    k: function () { moveMessage(-1); },
    e: function () { var form = document.getElementById("close-ticket"); if (form) form.submit(); },
    r: function () {
      var reply = replyForm();
      if (!reply) return;
      if (reply.tagName === "DETAILS") reply.open = true;
      var field = reply.querySelector("textarea, input:not([type=hidden])");
      (field || reply).focus();
      reply.scrollIntoView({block: "nearest"});
    }
  };
  var keys = rows.length ? queueKeys : messages.length ? ticketKeys : {};

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var action = keys[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  var notice = document.getElementById("presence");
  if (!notice || !window.fetch) return;
  var poll = Number(notice.dataset.poll || 20) * 1000;

  function activity() {
    var reply = replyForm();
    var active = document.activeElement;
    var writing = reply && (reply.contains(active) ||
      Array.prototype.some.call(reply.querySelectorAll("textarea"), function (t) { return t.value.trim() !== ""; }));
    return writing ? "replying" : "viewing";
  }

  function tell() {
    var body = new URLSearchParams({csrf: csrf, activity: activity()});
    fetch("/tickets/" + notice.dataset.ticket + "/presence", {method: "POST", body: body, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) return;
        notice.textContent = answer.others.map(function (o) {
          return o.name + " is " + (o.activity === "replying" ? "replying to" : "viewing") + " this ticket.";
        }).join(" ");
        notice.hidden = answer.others.length === 0;
      })
      .catch(function () {});
  }

  setInterval(tell, poll);
  document.addEventListener("focusin", function (event) {
    var reply = replyForm();
    if (reply && reply.contains(event.target)) tell();  // say "replying" at once, not at the next check
  });
})();
