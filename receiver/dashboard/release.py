"""One release's page: its status, failure, traffic report, timeline of steps and its log.

While the deploy runs, the page follows the log live (dashboard_assets.JS) and swaps in the
timeline and status this module renders for each chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import Template

from receiver.dashboard.html import (
    STEP_LABELS,
    Html,
    badge,
    clock,
    deploy_seconds,
    fill,
    is_running,
    iso,
    join,
    path,
    seconds,
    short_sha,
    source_label,
    tone,
    traffic,
    when,
)
from receiver.dashboard.pages import View, rollback_link

MAX_LOG_LINES = 3000  # shown on the page; the raw log has them all


RELEASE = Template("""<div class="page-head">
<div><h1>$app <span class="version">$version</span> <span id="state-badge">$badge</span></h1>
<p class="muted">$source · created $created</p></div>
<div class="actions">$rollback</div>
</div>
$failure
<section class="card">
<dl class="meta">
<div><dt>Commit</dt><dd><code title="$commit">$sha</code></dd></div>
<div><dt>Strategy</dt><dd>$strategy</dd></div>
<div><dt>Deploy time</dt><dd>$duration</dd></div>
<div class="double"><dt>Traffic during switch</dt><dd>$traffic</dd></div>
<div class="wide"><dt>Image</dt><dd><code>$image</code></dd></div>
</dl>
</section>
<div class="columns">
<section class="card timeline-card"><h2>Timeline</h2>
<ol class="timeline" id="timeline">$steps</ol></section>
<section class="card log-card"><div class="log-head"><h2>Log</h2>
<span id="follow-status" class="follow $follow_class">$follow_text</span>
<a class="muted" href="$raw">raw</a></div>
$trimmed<pre id="log" class="log" data-follow="$follow" data-url="$follow_url"
 data-position="$position">$log</pre></section>
</div>""")
STEP = Template("""<li class="step step-$tone"><span class="step-name">$label</span>
<span class="step-time"><time datetime="$iso">$clock</time></span>
<span class="step-duration">$duration</span></li>""")
FAILURE = Template("""<section class="card failure" role="alert"><h2>Failed at $step</h2>
<p>$reason</p>$tail</section>""")


def release_page(
    app: View, release: View, log: Sequence[str], position: int, following: bool, now: float
) -> Html:
    name, number = app["name"], release["number"]
    timings: Mapping[str, float] = release.get("timings") or {}
    total = deploy_seconds(timings)
    shown = log[-MAX_LOG_LINES:]
    trimmed = (
        fill(
            Template('<p class="muted">Showing the last $n of $total lines.</p>'),
            n=len(shown),
            total=len(log),
        )
        if len(shown) < len(log)
        else Html("")
    )
    return fill(
        RELEASE,
        app=name,
        version=release["version"],
        badge=badge(release["state"]),
        source=source_label(release),
        created=when(release["created_at"], now),
        rollback=rollback_link(name, release),
        failure=_failure(release),
        commit=release.get("commit") or "",
        sha=short_sha(release.get("commit")) or "—",
        strategy=release.get("strategy") or "—",
        duration=seconds(total) if total is not None and not following else "—",
        traffic=traffic(release.get("traffic")),
        image=release.get("image") or "—",
        steps=timeline(release, following, now),
        follow_class="follow-on" if following else "",
        follow_text="following live" if following else "",
        raw=path("apps", name, "releases", number, "log.txt"),
        follow="1" if following else "0",
        follow_url=path("apps", name, "releases", number, "log"),
        position=position,
        trimmed=trimmed,
        log="\n".join(shown),
    )


def timeline(release: View, following: bool, now: float) -> Html:
    """The release's steps with when each began and how long it took."""
    events: Sequence[View] = release.get("events") or []
    steps = []
    for index, event in enumerate(events):
        state, at = event["state"], float(event["at"])
        last = index == len(events) - 1
        current = last and following and is_running(state)
        if not last:
            duration = seconds(float(events[index + 1]["at"]) - at)
        else:
            duration = f"{seconds(now - at)} so far" if current else ""
        steps.append(
            fill(
                STEP,
                tone="current" if current else "done" if not last else tone(state),
                label=STEP_LABELS.get(state, state),
                iso=iso(at),
                clock=clock(at),
                duration=duration,
            )
        )
    return join(steps)


def _failure(release: View) -> Html:
    if not release.get("failure_reason"):
        return Html("")
    tail = release.get("log_tail")
    return fill(
        FAILURE,
        step=STEP_LABELS.get(release.get("failed_step") or "", release.get("failed_step") or "?"),
        reason=release["failure_reason"],
        tail=fill(Template('<pre class="log tail">$t</pre>'), t=tail) if tail else Html(""),
    )
