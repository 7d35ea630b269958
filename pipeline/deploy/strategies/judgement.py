"""Judging a canary by the requests it served, against the live release's over the same
window: its share of errors, and its latency at p95.

Errors are judged as soon as the canary has served `MIN_SAMPLE` requests, at every look, so a
release that fails its users is withdrawn within a second or two of enough evidence. Latency
is judged when a step ends (a p95 wants volume), and only when both sides have a sample and
the gap is above `MIN_P95_GAP_MS`: on a fast app a few milliseconds of noise are a large
ratio and hurt nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.app.config import CanarySettings
from pipeline.traefik.traffic import Served

MIN_SAMPLE = 20  # requests a side must have served before it is judged
MIN_P95_GAP_MS = 10.0


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    by_hand: bool = False  # `temps canary promote|abort`: no further step is judged


def judge(canary: Served, live: Served, limits: CanarySettings, final: bool) -> Verdict | None:
    """The verdict on one step; None while there is not enough to decide and it goes on."""
    errors = _errors(canary, live, limits)
    if errors is not None:
        return Verdict(False, errors)
    if not final:
        return None
    slow = _latency(canary, live, limits)
    if slow is not None:
        return Verdict(False, slow)
    return Verdict(True, f"canary {_figures(canary)}; live {_figures(live)}")


def _errors(canary: Served, live: Served, limits: CanarySettings) -> str | None:
    if canary.requests < MIN_SAMPLE:
        return None
    rate, base = canary.error_rate, live.error_rate
    if rate <= limits.max_error_rate or rate - base <= limits.max_error_rate_increase:
        return None
    return (
        f"canary errors {canary.errors} of {canary.requests} requests ({rate:.1%}) against "
        f"{live.errors} of {live.requests} ({base:.1%}) on the live release "
        f"(max_error_rate {limits.max_error_rate:g}, "
        f"max_error_rate_increase {limits.max_error_rate_increase:g})"
    )


def _latency(canary: Served, live: Served, limits: CanarySettings) -> str | None:
    if canary.p95_ms is None or live.p95_ms is None:
        return None
    if min(canary.requests, live.requests) < MIN_SAMPLE:
        return None
    if canary.p95_ms - live.p95_ms < MIN_P95_GAP_MS:
        return None
    ratio = canary.p95_ms / max(live.p95_ms, 0.001)
    if ratio <= limits.max_p95_ratio:
        return None
    return (
        f"canary p95 {canary.p95_ms:.0f} ms is {ratio:.1f}x the live release's "
        f"{live.p95_ms:.0f} ms (max_p95_ratio {limits.max_p95_ratio:g})"
    )


def _figures(served: Served) -> str:
    p95 = f"{served.p95_ms:.0f} ms" if served.p95_ms is not None else "-"
    return f"{served.errors} errors in {served.requests} requests, p95 {p95}"
