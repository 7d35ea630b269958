"use strict";
(function () {
  var log = document.getElementById("log");
  if (!log) { return; }
  log.scrollTop = log.scrollHeight;
  if (log.dataset.follow !== "1") { return; }
  var status = document.getElementById("follow-status");
  var position = Number(log.dataset.position) || 0;

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  function append(lines) {
    if (!lines.length) { return; }
    var stick = nearBottom();
    var text = (log.textContent ? "\n" : "") + lines.join("\n");
    log.appendChild(document.createTextNode(text));
    if (stick) { log.scrollTop = log.scrollHeight; }
  }
  function pause(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }
  async function follow() {
    for (;;) {
      try {
        var response = await fetch(log.dataset.url + "?position=" + position, {
          credentials: "same-origin", headers: { "Accept": "application/json" }
        });
        if (response.status === 401) { window.location.reload(); return; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var chunk = await response.json();
        append(chunk.lines);
        position = chunk.position;
        // Server-rendered, escaped fragments: the steps so far and the current status.
        if (chunk.timeline) { document.getElementById("timeline").innerHTML = chunk.timeline; }
        if (chunk.badge) { document.getElementById("state-badge").innerHTML = chunk.badge; }
        status.textContent = "following live";
        if (chunk.done) {
          status.textContent = "finished";
          // The timeline and the status come from the server: show the final ones.
          window.location.reload();
          return;
        }
      } catch (error) {
        status.textContent = "reconnecting…";
        await pause(2000);
      }
    }
  }
  follow();
})();
(function () {
  // The app page's live tail: its containers' lines as server-sent events.
  var box = document.getElementById("applog");
  if (!box || !window.EventSource) { return; }
  var status = document.getElementById("applog-status");
  var KEPT = 1000;  // lines on the page; older ones are dropped

  function nearBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }
  function add(text) {
    var stick = nearBottom();
    var line = document.createElement("div");
    line.textContent = text;
    box.appendChild(line);
    while (box.childNodes.length > KEPT) { box.removeChild(box.firstChild); }
    if (stick) { box.scrollTop = box.scrollHeight; }
  }
  function follow(query) {
    var source = new EventSource(box.dataset.url + query);
    source.onopen = function () {
      status.textContent = "following live";
      status.classList.add("follow-on");
    };
    source.onmessage = function (event) {
      var line = JSON.parse(event.data);
      add(line.at + " " + line.name + " v" + line.release + ": " + line.text);
    };
    source.addEventListener("notice", function (event) {
      var notice = JSON.parse(event.data);
      add(notice.at + " temps: " + notice.notice);
    });
    source.onerror = function () {
      // Closed here so the browser does not start over with the newest lines again: after
      // a pause, only what comes next.
      source.close();
      status.classList.remove("follow-on");
      status.textContent = "reconnecting…";
      setTimeout(function () { follow("?lines=0"); }, 2000);
    };
  }
  follow("");
})();
