"""The bake window: the previous slot stays up, unrouted, while the new one keeps being probed.

If the new slot fails `unhealthy_threshold` probes in a row, traffic flips back to the
previous slot (a route change, no boot) and the new release is marked failed. A newer
deploy ends the window early; it then decides what happens to the standby slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from pipeline.context import Context, Job
from pipeline.errors import DeployError
from pipeline.health import probe
from pipeline.notify import send_in_background
from pipeline.retire import Leaving, retire_in_background
from pipeline.slots import config_of, report_traffic, route_to, slot_of
from pipeline.sqlite.models import Release
from pipeline.states import ReleaseState as S

log = structlog.get_logger()


def bake(ctx: Context, app_name: str, pause: Callable[[float], bool]) -> None:
    """`pause(seconds)` waits between probes and says whether a newer deploy is waiting."""
    app = ctx.store.get_app(app_name)
    live, standby = ctx.store.live_release(app), ctx.store.standby_release(app)
    if live is None or standby is None:
        return
    job = Job(ctx, app, live, log.bind(app=app.name, release=f"v{live.number}"))
    config = config_of(live)
    check = config.healthcheck
    slot = slot_of(live)
    assert slot is not None
    ends = time.monotonic() + config.deploy.bake
    failures = 0
    job.log.info("bake.started", standby=f"v{standby.number}", seconds=config.deploy.bake)
    while (remaining := ends - time.monotonic()) > 0:
        result = probe(slot.url + check.path, check.timeout)
        failures = 0 if result.ok else failures + 1
        if failures:
            job.say(
                f"bake: health {check.path}: {result.detail} "
                f"(failure {failures}/{check.unhealthy_threshold})"
            )
        if failures >= check.unhealthy_threshold:
            flip_back(job, standby, f"failed health during the bake window: {result.detail}")
            return
        if pause(min(check.pause_after(failures > 0), remaining)):
            job.log.info("bake.cut_short", standby=f"v{standby.number}")
            return
    job.say(f"-----> bake window over: {job.label} stays live, v{standby.number} retires")
    ctx.journal.transition(standby, S.RETIRED)
    retire_in_background(ctx, app.name, Leaving.of(standby), job.say)
    report_traffic(job)
    job.log.info("bake.finished")


def flip_back(job: Job, standby: Release, reason: str) -> None:
    """Route back to the standby slot, then fail and stop the release that went bad."""
    ctx = job.ctx
    standby_slot = slot_of(standby)
    assert standby_slot is not None
    try:
        took = route_to(
            job, standby_slot, f"v{standby.number}", config_of(standby).healthcheck.path
        )
    except DeployError as error:
        job.log.error("bake.flip_back_failed", error=str(error))
        job.say(f"-----> could not switch back to v{standby.number}: {error}")
        return
    ctx.journal.transition(standby, S.LIVE)
    job.release = ctx.journal.transition(
        job.release,
        S.FAILED,
        failure_reason=reason,
        failed_step="bake",
        log_tail=ctx.runtime.logs_tail(job.release.container or "", 20),
    )
    job.log.warning("bake.flipped_back", to=f"v{standby.number}", reason=reason)
    job.say(f"-----> {reason}: switched back to v{standby.number} in {took * 1000:.0f} ms")
    send_in_background(ctx.sealer, job.app, job.release)
    # It served until the flip: the requests it took before still finish on it.
    retire_in_background(ctx, job.app.name, Leaving.of(job.release), job.say)
