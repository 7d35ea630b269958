"""HTML building blocks for the dashboard: escaping by default, and the small formatters.

Every value filled into a template is escaped unless it is already `Html`, so a page can
only contain markup that this module or a template wrote on purpose.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from string import Template
from typing import Any
from urllib.parse import quote

from pipeline.states import IN_FLIGHT
from pipeline.states import ReleaseState as S


class Html(str):
    """Markup that is safe as it is; any other value is escaped on its way into a page."""

    __slots__ = ()


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def fill(template: Template, **values: object) -> Html:
    return Html(template.substitute({key: esc(value) for key, value in values.items()}))


def join(parts: Iterable[Html], separator: str = "") -> Html:
    return Html(separator.join(esc(part) for part in parts))


def path(*segments: object) -> str:
    """A dashboard URL from raw segments, each quoted."""
    return "/dashboard/" + "/".join(quote(str(segment), safe="") for segment in segments)


RUNNING = IN_FLIGHT
STEP_LABELS: dict[str, str] = {
    S.QUEUED: "Queued",
    S.BUILDING: "Build",
    S.RELEASING: "Release command",
    S.BOOTING: "Boot",
    S.HEALTH_CHECKING: "Health gate",
    S.SWITCHING: "Switch",
    S.DRAINING: "Drain",
    S.LIVE: "Live",
    S.STANDBY: "Standby",
    S.RETIRED: "Retired",
    S.FAILED: "Failed",
    S.SUPERSEDED: "Superseded",
    S.INTERRUPTED: "Interrupted",
}
SHORT_STEPS: dict[str, str] = {
    S.BUILDING: "build",
    S.RELEASING: "release",
    S.BOOTING: "boot",
    S.HEALTH_CHECKING: "gate",
    S.SWITCHING: "switch",
    S.DRAINING: "drain",
}
TONES: dict[str, str] = {
    S.LIVE: "ok",
    S.STANDBY: "info",
    S.RETIRED: "muted",
    S.SUPERSEDED: "muted",
    S.FAILED: "bad",
    S.INTERRUPTED: "warn",
}
ROLLBACK_TARGETS = (S.RETIRED, S.STANDBY)


def is_running(state: str) -> bool:
    return state in RUNNING


def tone(state: str) -> str:
    return "run" if is_running(state) else TONES.get(state, "muted")


def state_label(state: str) -> str:
    return state.replace("_", " ")


def badge(state: str) -> Html:
    return fill(
        Template('<span class="badge badge-$tone" data-state="$state">$label</span>'),
        tone=tone(state),
        state=state,
        label=state_label(state),
    )


def short_sha(commit: str | None) -> str:
    return (commit or "")[:7]


def seconds(value: float) -> str:
    if value < 10:
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def ago(at: float, now: float | None = None) -> str:
    delta = max((time.time() if now is None else now) - at, 0.0)
    if delta < 10:
        return "just now"
    if delta < 60:
        return f"{delta:.0f} s ago"
    if delta < 3600:
        return f"{delta // 60:.0f} min ago"
    if delta < 48 * 3600:
        return f"{delta // 3600:.0f} h ago"
    return f"{delta // 86400:.0f} days ago"


def utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def when(at: float, now: float | None = None) -> Html:
    """A relative time, with the exact one on hover and for machines."""
    return fill(
        Template('<time datetime="$iso" title="$exact">$relative</time>'),
        iso=iso(at),
        exact=utc(at),
        relative=ago(at, now),
    )


def deploy_seconds(timings: Mapping[str, float]) -> float | None:
    """Time from queued to live or failed: the sum of the pipeline's own steps."""
    spent = [timings[state] for state in RUNNING if state in timings]
    return sum(spent) if spent else None


def step_breakdown(timings: Mapping[str, float]) -> str:
    """`build 3.1 s · gate 0.80 s ...`, each item kept on one line when it wraps."""
    return " · ".join(
        f"{SHORT_STEPS[state]} {seconds(timings[state])}".replace(" ", "\u00a0")
        for state in RUNNING
        if state in SHORT_STEPS and state in timings
    )


def source_label(release: Mapping[str, Any]) -> str:
    source = str(release.get("source") or "")
    rollback_of = release.get("rollback_of")
    if source == "rollback" and rollback_of:
        return f"rollback of v{rollback_of}"
    return {"config": "config change"}.get(source, source)


def traffic(report: object) -> Html:
    """The requests and errors around the switch; a dash when there is no report."""
    if not isinstance(report, Mapping):
        return Html('<span class="muted">—</span>')
    requests, errors = _count(report.get("requests")), _count(report.get("errors"))
    window, before = report.get("window_seconds"), report.get("before")
    details = []
    if isinstance(window, int | float):
        details.append(f"over {seconds(float(window))}")
    if isinstance(before, Mapping):
        earlier = _count(before.get("errors")), _count(before.get("requests"))
        details.append(f"before: {earlier[0]:,} of {earlier[1]:,}")
    drain = report.get("drain")
    if isinstance(drain, Mapping) and isinstance(drain.get("seconds"), int | float):
        cut = "" if drain.get("complete") else " (drain_timeout)"
        details.append(
            f"drained {seconds(float(drain['seconds']))}{cut}, "
            f"{_plural(_count(drain.get('finished')), 'request')} finished"
        )
    return fill(
        Template(
            '<span class="traffic"><span class="traffic-$tone">$errors</span> in $requests'
            '<span class="traffic-detail">$detail</span></span>'
        ),
        tone="bad" if errors else "ok",
        errors=_plural(errors, "error"),
        requests=_plural(requests, "request"),
        detail=" · ".join(details),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0
