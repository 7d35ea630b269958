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
