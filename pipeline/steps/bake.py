"""The bake window: the previous slot stays up, unrouted, while the new one keeps being probed.

If the new slot fails `unhealthy_threshold` probes in a row, traffic flips back to the
previous slot (a route change, no boot) and the new release is marked failed. A newer
deploy ends the window early; it then decides what happens to the standby slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.context import Deploy
from pipeline.errors import DeployError
from pipeline.release import formation
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import Release
from pipeline.steps import processes
from pipeline.steps.failure import LOG_TAIL_LINES
from pipeline.steps.health import probe
from pipeline.steps.notify import send_in_background
from pipeline.steps.retire import Leaving, retire_in_background
from pipeline.steps.switch import report_traffic, route_to


def bake(deploy: Deploy, pause: Callable[[float], bool]) -> None:
    """Watch the app's live release while a standby waits; `pause(seconds)` waits between
    probes and says whether a newer deploy is waiting."""
    ctx = deploy.ctx
    live, standby = ctx.store.live_release(deploy.app), ctx.store.standby_release(deploy.app)
    if live is None or standby is None:
        return
    baking = Deploy.of(ctx, live)
    config = live.config
    check = config.healthcheck
    slot = formation.slot_of(live)
    assert slot is not None
    ends = time.monotonic() + config.deploy.bake
    failures = 0
    baking.log.info("bake.started", standby=f"v{standby.number}", seconds=config.deploy.bake)
    while (remaining := ends - time.monotonic()) > 0:
        results = [probe(url + check.path, check.timeout) for url in slot.urls]
        bad = [result for result in results if not result.ok]
        failures = failures + 1 if bad else 0
        detail = (bad or results)[0].detail
        if failures:
            baking.say(
                f"bake: health {check.path}: {detail} "
                f"(failure {failures}/{check.unhealthy_threshold})"
            )
        if failures >= check.unhealthy_threshold:
            with ctx.slot_locks.of(deploy.app.name):
                flip_back(baking, standby, f"failed health during the bake window: {detail}")
            return
        if pause(min(check.pause_after(transitional=failures > 0), remaining)):
            baking.log.info("bake.cut_short", standby=f"v{standby.number}")
            return
    baking.say(f"-----> bake window over: {baking.label} stays live, v{standby.number} retires")
    baking.move_other(standby, S.RETIRED)
    for leaving in Leaving.every(standby):
        retire_in_background(ctx, deploy.app.name, leaving, baking.say)
    report_traffic(baking)
    baking.log.info("bake.finished")


def flip_back(baking: Deploy, standby: Release, reason: str) -> None:
    """Route back to the standby slot, then fail and stop the release that went bad."""
    ctx = baking.ctx
    standby_slot = formation.slot_of(standby)
    assert standby_slot is not None
    try:
        took = route_to(baking, standby_slot, f"v{standby.number}", standby.config.healthcheck.path)
    except DeployError as error:
        baking.log.error("bake.flip_back_failed", error=str(error))
        baking.say(f"-----> could not switch back to v{standby.number}: {error}")
        return
    baking.move_other(standby, S.LIVE)
    processes.replace(baking, baking.release, ctx.store.get_release(standby.pk))
    container = baking.release.container or ""
    tail = ctx.runtime.logs_tail(container, LOG_TAIL_LINES)
    failed = baking.move(S.FAILED, failure=Failure(reason, "bake", tail))
    baking.log.warning("bake.flipped_back", to=f"v{standby.number}", reason=reason)
    baking.say(f"-----> {reason}: switched back to v{standby.number} in {took * 1000:.0f} ms")
    send_in_background(ctx.sealer, baking.app, failed)
    # It served until the flip: the requests it took before still finish on it.
    for leaving in Leaving.every(failed):
        retire_in_background(ctx, baking.app.name, leaving, baking.say)
