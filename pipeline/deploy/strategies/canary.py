"""The canary: after the gate, a share of the app's requests goes to the new release, which
is judged by the requests it served against the live release's over the same window.

Traefik's weighted service sends `weight` percent of new clients to the new release and
keeps each on the release it got (a cookie). Each step lasts `duration` seconds, or until
`min_requests` requests reached the canary; a look at Traefik's access log every half second
judges its errors at once and, when the step ends, its latency (`judgement`). Passing every
step, the deploy goes on to the switch: 100 % to the new release, then the bake window
and the drain as for blue-green. Failing one, the split is withdrawn in one route change and
the release fails at step `canary` with the figures that failed it; the requests it already
had finish on it while it drains.

`temps canary promote|abort` decides by hand; a newer deploy (a rollback, say) withdraws the
canary, as does a daemon that stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.context import Deploy
from pipeline.deploy.strategies import blue_green
from pipeline.deploy.strategies.judgement import Verdict, judge
from pipeline.deploy.strategy import Lane
from pipeline.errors import CanaryFailed
from pipeline.release import formation
from pipeline.release.records import CanaryRecord, CanaryStep, Decision, TrafficRecord
from pipeline.release.records import Served as ServedRecord
from pipeline.release.states import ReleaseState as S
from pipeline.series.switch import LEAD_SECONDS, SwitchGraph
from pipeline.sqlite.models import Release
from pipeline.steps.build import Built
from pipeline.steps.switch import Target, route_to, servers_of
from pipeline.traefik import publish, routes
from pipeline.traefik.traffic import Served, served_by, traffic_report

LOOK_SECONDS = 0.5
Pause = Callable[[float], bool]  # True when the deploy should stop waiting


def start(run: Deploy, built: Built, lane: Lane) -> Target:
    target = blue_green.start(run, built, lane)
    canary(run, target, lane.pause)  # a share of the requests first; withdrawn if worse
    return target


def hand_over(run: Deploy, target: Target, previous: Release | None) -> None:
    # Promoted, the canary is live as a blue-green release would be: the old slot bakes.
    blue_green.hand_over(run, target, previous)


def canary(run: Deploy, target: Target, pause: Pause) -> None:
    """Run the canary's steps; returns when it passed, raises CanaryFailed when withdrawn."""
    live = run.ctx.store.live_release(run.app)
    if live is None:
        run.say("-----> canary: nothing is live to compare with; switching as blue-green")
        return
    run.move(S.CANARY)
    run.ctx.canary_calls.take(run.app.name)  # a call left from an earlier canary
    steps: list[CanaryStep] = []
    began = time.time()
    for weight in target.config.canary.percents:
        verdict = _step(run, target, live, weight, pause, steps)
        if not verdict.passed:
            _withdraw(run, live, verdict, steps, target.slot.urls, began)
        if verdict.by_hand:
            break
    _record(run, steps, "promoted", steps[-1].reason if steps else "")
    run.say(f"-----> canary passed: promoting {run.label}")


def _step(
    run: Deploy,
    target: Target,
    live: Release,
    weight: int,
    pause: Pause,
    steps: list[CanaryStep],
) -> Verdict:
    """One weight, held until it is judged."""
    ctx, limits = run.ctx, target.config.canary
    live_slot = formation.slot_of(live)
    live_urls = live_slot.urls if live_slot is not None else ()
    path = target.config.healthcheck.path
    took = publish.split(
        ctx.settings, run.app.name, live_urls, target.slot.urls, weight, run.label, path
    )
    run.say(
        f"-----> canary: {weight}% of new clients to {run.label} (confirmed in "
        f"{took * 1000:.0f} ms), for {limits.duration:g}s or {limits.min_requests} requests"
    )
    groups = {"canary": set(target.slot.urls), "live": set(live_urls)}
    started, ends = time.time(), time.monotonic() + limits.duration
    while True:
        served = served_by(ctx.settings.access_log, groups, started, time.time())
        called = ctx.canary_calls.take(run.app.name)
        done = served["canary"].requests >= limits.min_requests or time.monotonic() >= ends
        verdict = _called(called) or judge(served["canary"], served["live"], limits, done)
        if verdict is None and pause(LOOK_SECONDS):
            verdict = Verdict(False, "a newer deploy came (or the daemon is stopping)")
        if verdict is not None:
            step = CanaryStep(
                weight=weight,
                seconds=round(time.time() - started, 2),
                canary=figures(served["canary"]),
                live=figures(served["live"]),
                passed=verdict.passed,
                reason=verdict.reason,
            )
            steps.append(step)
            _record(run, steps, "running", verdict.reason)
            return verdict


def _called(decision: str | None) -> Verdict | None:
    if decision == "promote":
        return Verdict(True, "promoted by hand", by_hand=True)
    if decision == "abort":
        return Verdict(False, "aborted by hand", by_hand=True)
    return None


def _withdraw(
    run: Deploy,
    live: Release,
    verdict: Verdict,
    steps: list[CanaryStep],
    canary_urls: tuple[str, ...],
    began: float,
) -> None:
    """Every request back to the live release in one route change; the release fails. The
    record counts what the canary answered from its first request to the withdrawal."""
    slot = formation.slot_of(live)
    assert slot is not None
    took = route_to(
        run, slot, f"v{live.number}", live.config.healthcheck.path, live.config.skew.cookie
    )
    run.say(
        f"-----> canary withdrawn in {took * 1000:.0f} ms: every request goes to "
        f"v{live.number} again"
    )
    access_log = run.ctx.settings.access_log
    served = served_by(access_log, {"canary": set(canary_urls)}, began, time.time())["canary"]
    _record(run, steps, "withdrawn", verdict.reason, served)
    _graph(run, began)
    raise CanaryFailed(f"canary withdrawn: {verdict.reason}")


def _record(
    run: Deploy,
    steps: list[CanaryStep],
    decision: Decision,
    reason: str,
    until_withdrawn: Served | None = None,
) -> None:
    """The canary's figures go in the release's traffic record, step by step."""
    record = CanaryRecord(
        decision=decision,
        reason=reason,
        steps=tuple(steps),
        requests_until_withdrawn=until_withdrawn.requests if until_withdrawn else None,
        errors_until_withdrawn=until_withdrawn.errors if until_withdrawn else None,
    )
    run.ctx.store.add_traffic(run.id, TrafficRecord(canary=record))


def _graph(run: Deploy, began: float) -> None:
    """A withdrawn canary has no switch and no report: its graph goes from a little before
    its first step to the withdrawal, both releases side by side."""
    now, settings = time.time(), run.ctx.settings
    graph = SwitchGraph(began - LEAD_SECONDS, began, now, servers_of(run))
    hosts = set(routes.site_of(settings, run.app.name).hosts)
    traffic_report(settings.access_log, hosts, began, now, graph)
    run.ctx.store.add_traffic(run.id, TrafficRecord(series=graph.record()))


def figures(served: Served) -> ServedRecord:
    return ServedRecord.model_validate(served.to_dict())
