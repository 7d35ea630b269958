"""The small formatters and labels of the dashboard's pages: plain text, never markup.

The templates (templates/*.html) apply these as filters; Jinja2 escapes what they return.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from pipeline.release import records
from pipeline.release.records import WEB, TrafficRecord
from pipeline.release.states import IN_FLIGHT
from pipeline.release.states import ReleaseState as S
from pipeline.supervision.census import Census
from receiver.api.views import ReleaseBrief


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
    S.CANARY: "Canary",
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
    S.CANARY: "canary",
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
CONTAINER_TONES: dict[str, str] = {  # Docker's container states, and ours for one gone
    "running": "ok",
    "created": "info",
    "paused": "info",
    "restarting": "warn",
    "removing": "muted",
    "exited": "bad",
    "dead": "bad",
    "missing": "bad",
}
CANARY_TONES: dict[str, str] = {"promoted": "ok", "withdrawn": "bad", "running": "info"}


def is_running(state: str) -> bool:
    return state in RUNNING


def tone(state: str) -> str:
    return "run" if is_running(state) else TONES.get(state, "muted")


def state_label(state: str) -> str:
    return state.replace("_", " ")


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


def source_label(release: ReleaseBrief) -> str:
    if release.source == "rollback" and release.rollback_of:
        return f"rollback of v{release.rollback_of}"
    return {"config": "config change"}.get(release.source, release.source)


def step_label(state: str | None) -> str:
    return STEP_LABELS.get(state or "", state or "?")


def formation_label(formation: Mapping[str, int] | None) -> str:
    """`web=3 worker=1`, web first. A release recorded before formations (None) ran one web
    container."""
    counts = {WEB: 1, **(formation or {})}
    return " ".join(f"{process}={counts[process]}" for process in sorted(counts, key=_web_first))


def running_label(census: Census | None) -> str:
    """`web 2/2 · worker 0/1 stopped`: each process type's containers running of wanted."""
    if not census:
        return ""
    return " · ".join(
        f"{process} {census[process].running}/{census[process].wanted}"
        + (" stopped" if census[process].stopped else "")
        for process in sorted(census, key=_web_first)
    )


def running_tone(census: Census | None) -> str:
    """ok when the formation runs whole, warn while some of it is stopped on purpose, bad
    while some that should run does not."""
    if not census:
        return "neutral"
    if any(count.missing for count in census.values()):
        return "bad"
    return "warn" if any(count.stopped for count in census.values()) else "ok"


def _web_first(process: str) -> tuple[bool, str]:
    return process != WEB, process


def container_tone(state: str) -> str:
    return CONTAINER_TONES.get(state, "muted")


def can_roll_back(release: ReleaseBrief) -> bool:
    return release.state in ROLLBACK_TARGETS and bool(release.image)


@dataclass(frozen=True)
class Traffic:
    """The requests and errors around the switch, as the pages word them."""

    tone: str  # ok, or bad when any request failed
    errors: str
    requests: str
    detail: str


def traffic(report: TrafficRecord | None) -> Traffic | None:
    """The switch's traffic report in words; None when there is no report, as for a canary
    withdrawn (or still running) before any switch: its record holds only the canary's."""
    if report is None or (not report.switched and report.drain is None):
        return None
    requests, errors = report.requests or 0, report.errors or 0
    details = []
    if report.window_seconds is not None:
        details.append(f"over {seconds(report.window_seconds)}")
    if report.before is not None:
        details.append(f"before: {report.before.errors:,} of {report.before.requests:,}")
    if report.drain is not None:
        drain = report.drain
        cut = "" if drain.complete else " (drain_timeout)"
        details.append(
            f"drained {seconds(drain.seconds)}{cut}, {_plural(drain.finished, 'request')} finished"
        )
    return Traffic(
        tone="bad" if errors else "ok",
        errors=_plural(errors, "error"),
        requests=_plural(requests, "request"),
        detail=" · ".join(details),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def percent(rate: float) -> str:
    """A share as a percentage: 0.0333 is `3.3%`."""
    return f"{rate * 100:.1f}%"


def milliseconds(value: float | None) -> str:
    """A latency in ms, to three figures or so; `-` without a sample (None)."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


@dataclass(frozen=True)
class Served:
    """What one side (the canary or the live release) answered during a canary step."""

    requests: str
    errors: str
    error_rate: str
    p50: str
    p95: str


@dataclass(frozen=True)
class CanaryStep:
    weight: str  # the canary's share of new clients, `10%`
    seconds: str
    canary: Served
    live: Served
    passed: bool
    reason: str


@dataclass(frozen=True)
class Canary:
    """A canary's decision and each step's figures, as the release page words them."""

    decision: str  # running, promoted or withdrawn
    tone: str
    reason: str
    steps: tuple[CanaryStep, ...]
    hurt: str | None  # withdrawn: `4 of 130 requests` failed on the canary until then


def canary(report: TrafficRecord | None) -> Canary | None:
    """The canary's figures in the release's traffic record; None when it ran no canary."""
    figures = report.canary if report is not None else None
    if figures is None:
        return None
    requests, errors = figures.requests_until_withdrawn, figures.errors_until_withdrawn
    hurt = None
    if requests is not None and errors is not None:
        hurt = f"{errors:,} of {_plural(requests, 'request')}"
    return Canary(
        decision=figures.decision,
        tone=CANARY_TONES.get(figures.decision, "muted"),
        reason=figures.reason,
        steps=tuple(_canary_step(step) for step in figures.steps),
        hurt=hurt,
    )


def _canary_step(step: records.CanaryStep) -> CanaryStep:
    return CanaryStep(
        weight=f"{step.weight:g}%",
        seconds=seconds(step.seconds),
        canary=_served(step.canary),
        live=_served(step.live),
        passed=step.passed,
        reason=step.reason,
    )


def _served(side: records.Served) -> Served:
    return Served(
        requests=f"{side.requests:,}",
        errors=f"{side.errors:,}",
        error_rate=percent(side.error_rate),
        p50=milliseconds(side.p50_ms),
        p95=milliseconds(side.p95_ms),
    )
