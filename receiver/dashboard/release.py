"""One release's page: its status, failure, traffic report, the graph of its switch, canary
figures, timeline of steps and its log.

While the deploy runs, the page follows the log live (static/dashboard.js) and swaps in the
timeline and status rendered from `timeline` for each chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from receiver.api.views import AppView, ReleaseDetail
from receiver.dashboard.formats import (
    canary,
    deploy_seconds,
    is_running,
    seconds,
    step_label,
    tone,
)
from receiver.dashboard.graphs import switch_graphs
from receiver.dashboard.pages import Page

MAX_LOG_LINES = 3000  # shown on the page; the raw log has them all


@dataclass(frozen=True)
class Step:
    """One state the release went through, as the timeline shows it."""

    tone: str  # done, current, or the tone of the state it ended in
    label: str
    at: float
    duration: str


def release_page(
    app: AppView,
    release: ReleaseDetail,
    log: Sequence[str],
    position: int,
    following: bool,
    now: float,
) -> Page:
    total = deploy_seconds(release.timings)
    shown = log[-MAX_LOG_LINES:]
    context = {
        "app": app.name,
        "release": release,
        "now": now,
        "following": following,
        "duration": seconds(total) if total is not None and not following else "—",
        "steps": timeline(release, following, now),
        "canary": canary(release.traffic),
        "graphs": switch_graphs(release),
        "position": position,
        "log": "\n".join(shown),
        "shown": len(shown),
        "total": len(log),
    }
    return Page("release.html", context)


def timeline(release: ReleaseDetail, following: bool, now: float) -> list[Step]:
    """The release's steps with when each began and how long it took."""
    events = release.events
    steps = []
    for index, event in enumerate(events):
        state, at = event.state, event.at
        last = index == len(events) - 1
        current = last and following and is_running(state)
        if not last:
            duration = seconds(events[index + 1].at - at)
        else:
            duration = f"{seconds(now - at)} so far" if current else ""
        steps.append(
            Step(
                tone="current" if current else "done" if not last else tone(state),
                label=step_label(state),
                at=at,
                duration=duration,
            )
        )
    return steps
