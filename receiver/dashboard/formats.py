"""The small formatters and labels of the dashboard's pages: plain text, never markup.

The templates (templates/*.html) apply these as filters; Jinja2 escapes what they return.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pipeline.release.records import WEB
from pipeline.release.states import IN_FLIGHT
from pipeline.release.states import ReleaseState as S


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


def source_label(release: Mapping[str, Any]) -> str:
    source = str(release.get("source") or "")
    rollback_of = release.get("rollback_of")
    if source == "rollback" and rollback_of:
        return f"rollback of v{rollback_of}"
    return {"config": "config change"}.get(source, source)


def step_label(state: str | None) -> str:
    return STEP_LABELS.get(state or "", state or "?")


def formation_label(formation: Mapping[str, Any] | None) -> str:
    """`web=3 worker=1`, web first. A release recorded before formations (None) ran one web
    container."""
    counts = {WEB: 1, **(formation or {})}
    return " ".join(f"{process}={counts[process]}" for process in sorted(counts, key=_web_first))


def _web_first(process: str) -> tuple[bool, str]:
    return process != WEB, process


def container_tone(state: str) -> str:
    return CONTAINER_TONES.get(state, "muted")


def can_roll_back(release: Mapping[str, Any]) -> bool:
    return release["state"] in ROLLBACK_TARGETS and bool(release.get("image"))


@dataclass(frozen=True)
class Traffic:
    """The requests and errors around the switch, as the pages word them."""

    tone: str  # ok, or bad when any request failed
    errors: str
    requests: str
    detail: str


def traffic(report: object) -> Traffic | None:
    """The switch's traffic report in words; None when there is no report, as for a canary
    withdrawn (or still running) before any switch: its record holds only the canary's."""
    if not isinstance(report, Mapping) or set(report) <= {"canary"}:
        return None
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
    return Traffic(
        tone="bad" if errors else "ok",
        errors=_plural(errors, "error"),
        requests=_plural(requests, "request"),
        detail=" · ".join(details),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def percent(rate: float) -> str:
    """A share as a percentage: 0.0333 is `3.3%`."""
    return f"{rate * 100:.1f}%"


def milliseconds(value: object) -> str:
    """A latency in ms, to three figures or so; `-` without a sample (None)."""
    if not isinstance(value, int | float):
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


def canary(report: object) -> Canary | None:
    """The canary's figures in the release's traffic record; None when it ran no canary."""
    figures = report.get("canary") if isinstance(report, Mapping) else None
    if not isinstance(figures, Mapping):
        return None
    decision = str(figures.get("decision") or "")
    steps = figures.get("steps")
    requests = figures.get("requests_until_withdrawn")
    errors = figures.get("errors_until_withdrawn")
    hurt = None
    if isinstance(requests, int) and isinstance(errors, int):
        hurt = f"{errors:,} of {_plural(requests, 'request')}"
    return Canary(
        decision=decision,
        tone=CANARY_TONES.get(decision, "muted"),
        reason=str(figures.get("reason") or ""),
        steps=tuple(_canary_step(s) for s in _items(steps) if isinstance(s, Mapping)),
        hurt=hurt,
    )


def _items(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _canary_step(step: Mapping[str, Any]) -> CanaryStep:
    weight, spent = step.get("weight"), step.get("seconds")
    return CanaryStep(
        weight=f"{weight:g}%" if isinstance(weight, int | float) else "?",
        seconds=seconds(float(spent)) if isinstance(spent, int | float) else "-",
        canary=_served(step.get("canary")),
        live=_served(step.get("live")),
        passed=step.get("passed") is True,
        reason=str(step.get("reason") or ""),
    )


def _served(side: object) -> Served:
    figures: Mapping[str, Any] = side if isinstance(side, Mapping) else {}
    requests, errors = _count(figures.get("requests")), _count(figures.get("errors"))
    rate = figures.get("error_rate")
    if not isinstance(rate, int | float):
        rate = errors / requests if requests else 0.0
    return Served(
        requests=f"{requests:,}",
        errors=f"{errors:,}",
        error_rate=percent(float(rate)),
        p50=milliseconds(figures.get("p50_ms")),
        p95=milliseconds(figures.get("p95_ms")),
    )
