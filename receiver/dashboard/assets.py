"""The dashboard's stylesheet and its one script, served by the daemon itself.

No build step and nothing from outside: the Content-Security-Policy of the pages allows
styles and scripts from the daemon only. URLs carry a hash of the content, so a browser may
cache them and still never run an old script against a new page.
"""

from __future__ import annotations

import hashlib

CSS = """
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --panel: #ffffff; --text: #1c2430; --muted: #5d6877; --line: #e1e5ea;
  --accent: #2f54d6; --accent-hover: #2343b5; --accent-text: #ffffff;
  --ok: #17703a; --ok-bg: #dcf5e4; --bad: #b42318; --bad-bg: #fde8e6;
  --run: #0a5fb4; --run-bg: #dcecfd; --warn: #8a5a00; --warn-bg: #fdf1cc;
  --info: #6a3fb8; --info-bg: #efe7fc; --muted-bg: #eceff3;
  --code-bg: #111827; --code-text: #e5e7eb;
  --radius: 10px; --shadow: 0 1px 2px rgba(16, 24, 40, .06);
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1318; --panel: #171c23; --text: #e4e8ee; --muted: #98a2b0; --line: #2a313b;
    --accent: #6d8cff; --accent-hover: #86a0ff; --accent-text: #0b1020;
    --ok: #5fd38a; --ok-bg: #12301f; --bad: #ff8a80; --bad-bg: #3a1614;
    --run: #7cb8ff; --run-bg: #10263d; --warn: #f2c94c; --warn-bg: #33290c;
    --info: #c3a6ff; --info-bg: #261a3d; --muted-bg: #222831;
    --code-bg: #0a0d12; --shadow: none;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", sans-serif;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .sha { font-family: var(--mono); font-size: .88em; }
h1 { font-size: 1.55rem; line-height: 1.25; margin: 0; font-weight: 650; }
h2 { font-size: 1.05rem; margin: 0 0 .75rem; font-weight: 620; }
p { margin: .4rem 0; }
.wrap { max-width: 1160px; margin: 0 auto; padding: 0 20px; }
main.wrap { padding-top: 20px; padding-bottom: 48px; }
.muted { color: var(--muted); }
.strong { font-weight: 600; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }

.topbar { background: var(--panel); border-bottom: 1px solid var(--line); }
.topbar-inner { display: flex; align-items: center; justify-content: space-between;
  min-height: 56px; gap: 16px; }
.brand { display: inline-flex; align-items: center; gap: 10px; font-weight: 700;
  font-size: 1.1rem; color: var(--text); letter-spacing: .01em; }
.brand:hover { text-decoration: none; }
.brand-mark { width: 22px; height: 22px; border-radius: 6px;
  background: linear-gradient(135deg, var(--accent), #29b37a); }
.nav { display: flex; align-items: center; gap: 18px; }
.nav form { margin: 0; }
.linklike { background: none; border: 0; padding: 0; font: inherit; color: var(--muted);
  cursor: pointer; }
.linklike:hover { color: var(--text); text-decoration: underline; }
.crumbs { font-size: .9rem; color: var(--muted); margin-bottom: 14px; }
.crumbs a { color: var(--muted); }

.page-head { display: flex; align-items: flex-end; justify-content: space-between;
  gap: 12px 24px; flex-wrap: wrap; margin: 4px 0 18px; }
.page-head h1 { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.page-head .url { font-size: .95rem; }
.actions { display: flex; gap: 10px; flex-wrap: wrap; align-items: center; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 18px 20px; box-shadow: var(--shadow); margin-bottom: 20px; }
.card.empty p { margin-top: 0; }
.columns { display: grid; grid-template-columns: minmax(240px, 320px) minmax(0, 1fr); gap: 20px;
  align-items: start; }
.columns .card { margin-bottom: 0; }

.button { display: inline-flex; align-items: center; justify-content: center; gap: 6px;
  min-height: 38px; padding: 8px 16px; border-radius: 8px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-text); font: inherit; font-weight: 600;
  cursor: pointer; white-space: nowrap; }
.button:hover { background: var(--accent-hover); text-decoration: none; }
.button.secondary { background: var(--panel); color: var(--text); border-color: var(--line); }
.button.secondary:hover { border-color: var(--muted); background: var(--panel); }
.button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
.button.small { min-height: 30px; padding: 4px 10px; font-size: .85rem; font-weight: 550; }
.button:focus-visible, input:focus-visible, a:focus-visible {
  outline: 3px solid color-mix(in srgb, var(--accent) 45%, transparent); outline-offset: 2px; }

.badge { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px 2px 8px;
  border-radius: 999px; font-size: .8rem; font-weight: 600; line-height: 1.6;
  white-space: nowrap; vertical-align: middle; }
.badge::before { content: ""; width: 7px; height: 7px; border-radius: 50%;
  background: currentColor; }
.badge-ok { color: var(--ok); background: var(--ok-bg); }
.badge-bad { color: var(--bad); background: var(--bad-bg); }
.badge-run { color: var(--run); background: var(--run-bg); }
.badge-run::before { animation: pulse 1.2s ease-in-out infinite; }
.badge-warn { color: var(--warn); background: var(--warn-bg); }
.badge-info { color: var(--info); background: var(--info-bg); }
.badge-muted { color: var(--muted); background: var(--muted-bg); }
h1 .badge { font-size: .85rem; }
@keyframes pulse { 50% { opacity: .25; } }
@media (prefers-reduced-motion: reduce) { .badge-run::before, .follow-on::before {
  animation: none; } }
.version { font-weight: 650; font-variant-numeric: tabular-nums; }
h1 .version { color: var(--muted); font-weight: 600; }

.flash { border-radius: 8px; padding: 10px 14px; margin-bottom: 16px; border: 1px solid; }
.flash-ok { color: var(--ok); background: var(--ok-bg); border-color: transparent; }
.flash-error { color: var(--bad); background: var(--bad-bg); border-color: transparent; }
.flash-info { color: var(--run); background: var(--run-bg); border-color: transparent; }

.table { width: 100%; border-collapse: separate; border-spacing: 0; background: var(--panel);
  border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden;
  box-shadow: var(--shadow); }
.table th { text-align: left; font-size: .75rem; text-transform: uppercase;
  letter-spacing: .05em; color: var(--muted); font-weight: 600; padding: 10px 14px;
  background: color-mix(in srgb, var(--muted-bg) 55%, var(--panel)); }
.table td { padding: 12px 14px; border-top: 1px solid var(--line); vertical-align: top; }
.table tbody tr:hover td { background: color-mix(in srgb, var(--muted-bg) 35%, var(--panel)); }
.table .row-actions { text-align: right; }
.breakdown, .traffic-detail { display: block; color: var(--muted); font-size: .8rem; }
.breakdown { max-width: 300px; }
@media (min-width: 721px) {
  .table td:not([data-label=Duration]) { white-space: nowrap; }
}
.traffic-ok { color: var(--ok); font-weight: 600; }
.traffic-bad { color: var(--bad); font-weight: 600; }

.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
  gap: 14px 24px; margin: 0; }
.meta .wide { grid-column: 1 / -1; }
.meta .double { grid-column: span 2; }
.meta dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); font-weight: 600; }
.meta dd { margin: 2px 0 0; overflow-wrap: anywhere; }

.login { max-width: 400px; margin: 10vh auto 0; }
.login h1 { margin-bottom: 6px; }
.login code { white-space: nowrap; }
.stack { display: flex; flex-direction: column; gap: 8px; margin-top: 16px; }
.stack label { font-weight: 600; font-size: .9rem; }
input[type=password], input[type=text] { font: inherit; padding: 9px 12px; border-radius: 8px;
  border: 1px solid var(--line); background: var(--bg); color: var(--text); width: 100%; }
.stack .button { margin-top: 6px; }
.confirm { max-width: 620px; }
.confirm h1 { font-size: 1.3rem; margin-bottom: 8px; }
.confirm form { margin-top: 16px; }

.code, .log { background: var(--code-bg); color: var(--code-text); border-radius: 8px;
  padding: 12px 14px; margin: 0; font: 12.5px/1.55 var(--mono); white-space: pre-wrap;
  overflow-wrap: anywhere; }
.log { max-height: 65vh; overflow: auto; min-height: 120px; }
.log.tail { max-height: 260px; min-height: 0; margin-top: 10px; }
.log-head { display: flex; align-items: baseline; gap: 12px; margin-bottom: 10px; }
.log-head h2 { margin: 0; margin-right: auto; }
.follow { font-size: .85rem; color: var(--muted); }
.follow-on { color: var(--run); display: inline-flex; align-items: center; gap: 6px; }
.follow-on::before { content: ""; width: 7px; height: 7px; border-radius: 50%;
  background: currentColor; animation: pulse 1.2s ease-in-out infinite; }
.failure { border-color: color-mix(in srgb, var(--bad) 40%, var(--line));
  background: color-mix(in srgb, var(--bad-bg) 45%, var(--panel)); }
.failure h2 { color: var(--bad); margin-bottom: 4px; }

.timeline { list-style: none; margin: 0; padding: 0 0 0 4px; }
.step { position: relative; display: grid; grid-template-columns: 1fr auto; gap: 0 12px;
  padding: 0 0 16px 22px; }
.step::before { content: ""; position: absolute; left: 0; top: 6px; width: 11px; height: 11px;
  border-radius: 50%; background: var(--panel); border: 2px solid var(--muted); }
.step::after { content: ""; position: absolute; left: 5px; top: 20px; bottom: 0; width: 1px;
  background: var(--line); }
.step:last-child { padding-bottom: 0; }
.step:last-child::after { display: none; }
.step-name { font-weight: 600; }
.step-time { grid-row: 2; color: var(--muted); font: 12px/1.5 var(--mono); }
.step-duration { grid-row: 1 / span 2; grid-column: 2; align-self: center; font-size: .85rem;
  color: var(--muted); font-variant-numeric: tabular-nums; }
.step-done::before { border-color: var(--muted); background: var(--muted); }
.step-ok::before { border-color: var(--ok); background: var(--ok); }
.step-bad::before { border-color: var(--bad); background: var(--bad); }
.step-warn::before { border-color: var(--warn); }
.step-info::before { border-color: var(--info); }
.step-current::before { border-color: var(--run); background: var(--run);
  animation: pulse 1.2s ease-in-out infinite; }
.step-current .step-duration { color: var(--run); }

@media (max-width: 860px) {
  .columns { grid-template-columns: 1fr; }
}
@media (max-width: 720px) {
  .wrap { padding: 0 14px; }
  main.wrap { padding-top: 14px; }
  h1 { font-size: 1.3rem; }
  .card { padding: 14px; }
  .table, .table tbody, .table tr, .table td { display: block; width: 100%; }
  .table { background: none; border: 0; box-shadow: none; overflow: visible; }
  .table thead { display: none; }
  .table tr { background: var(--panel); border: 1px solid var(--line);
    border-radius: var(--radius); margin-bottom: 12px; padding: 6px 14px;
    box-shadow: var(--shadow); }
  .table td { border: 0; padding: 8px 0; text-align: right; overflow-wrap: anywhere; }
  .table td + td { border-top: 1px solid var(--line); }
  .table td::before { content: attr(data-label); float: left; margin-right: 16px;
    color: var(--muted); font-size: .85rem; line-height: 1.75; }
  .table tbody tr:hover td { background: none; }
  .table td:first-child { font-size: 1.1rem; text-align: left; }
  .table td:first-child::before { display: none; }
  .table .row-actions:empty { display: none; }
  .breakdown { max-width: none; }
  .meta { grid-template-columns: 1fr 1fr; }
  .page-head { align-items: flex-start; }
  .log { max-height: 55vh; }
}
"""

JS = """
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
    var text = (log.textContent ? "\\n" : "") + lines.join("\\n");
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
"""

ASSETS: dict[str, tuple[str, str]] = {
    "dashboard.css": (CSS, "text/css; charset=utf-8"),
    "dashboard.js": (JS, "text/javascript; charset=utf-8"),
}
_VERSIONS = {
    name: hashlib.sha256(body.encode()).hexdigest()[:12] for name, (body, _) in ASSETS.items()
}


def asset_url(name: str) -> str:
    return f"/dashboard/assets/{name}?v={_VERSIONS[name]}"
