"""The bake window: the previous slot stays up, unrouted, while the new one keeps being probed.

Each probe reads the live slot as recorded now and looks at each web container where it runs
now (`pipeline.steps.replicas`), and judges each on its own (`pipeline.steps.judge`): a
container the supervisor or Swarm put back elsewhere is judged there, one lost with its node is
not held against the release, and one that crashes counts as its own failure; a web stopped
on purpose (`temps ps stop`) ends the window. When one
container fails `unhealthy_threshold` times in a row,
traffic flips back to the standby's containers that run on a node that is up and answer (a
route change, no boot), and the new release is marked failed. When none of them can serve,
the flip is refused: the release stays live, the reason goes to its log, and the window goes
on (a standby Swarm puts back elsewhere may take over at the next failing run). A newer
deploy ends the window early; it then decides what happens to the standby slot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pipeline.app.config import AppConfig
from pipeline.context import Deploy
from pipeline.errors import DeployError, TempsError
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import Slot
from pipeline.sqlite.models import Release
from pipeline.statuses.report import report
from pipeline.steps import processes
from pipeline.steps.failure import LOG_TAIL_LINES
from pipeline.steps.health import probe
from pipeline.steps.judge import Judge, Judged
from pipeline.steps.notify import send_in_background
from pipeline.steps.replicas import place_slot, recorded_as, serving_now
from pipeline.steps.retire import Leaving, retire_in_background
from pipeline.steps.skew import keep_replaced, unkeep
from pipeline.steps.switch import report_traffic, route_to

TAIL_SECONDS = 5.0  # the most a flip back waits for the failed container's last lines


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
    ends = time.monotonic() + config.deploy.bake
    judge = Judge(check, _node_loss_seconds(baking))
    baking.log.info("bake.started", standby=f"v{standby.number}", seconds=config.deploy.bake)
    while (remaining := ends - time.monotonic()) > 0:
        if WEB in ctx.store.get_app(deploy.app.name).stopped:
            # Stopped on purpose (`temps ps stop`): no container of it is a crash to flip on.
            baking.say(f"-----> {baking.label} was stopped (temps ps stop): the window ends")
            break
        failing = look(baking, judge, config)
        if failing is not None:
            with ctx.slot_locks.of(deploy.app.name):
                if flip_back(baking, standby, failing):
                    return
            judge.forgive(failing.container)
        if pause(min(check.pause_after(transitional=judge.unsettled), remaining)):
            baking.log.info("bake.cut_short", standby=f"v{standby.number}")
            return
    baking.say(f"-----> bake window over: {baking.label} stays live, v{standby.number} retires")
    baking.move_other(standby, S.RETIRED)
    for leaving in keep_replaced(baking, standby, config, fresh=False):
        retire_in_background(ctx, deploy.app.name, leaving, baking.say)
    report_traffic(baking)
    baking.log.info("bake.finished")


def _tail_within(baking: Deploy, container: str, seconds: float) -> str:
    """The failed container's last lines, or none after `seconds`: Swarm's service logs can
    hang while a node is lost, and the flip back must not wait for them."""
    found: list[str] = []

    def read() -> None:
        try:
            found.append(baking.ctx.runtime.logs_tail(container, LOG_TAIL_LINES))
        except TempsError as error:
            baking.log.warning("bake.log_tail_unread", error=str(error))

    reader = threading.Thread(target=read, name=f"tail-{container}", daemon=True)
    reader.start()
    reader.join(seconds)
    return found[0] if found else ""


def _node_loss_seconds(baking: Deploy) -> float:
    try:
        return baking.ctx.runtime.node_loss_seconds()
    except TempsError as error:
        baking.log.warning("bake.runtime_unavailable", error=str(error))
        return 0.0


def look(baking: Deploy, judge: Judge, config: AppConfig) -> Judged | None:
    """One probe of each web container of the live slot as recorded now, where it runs now;
    the first container whose run of failures fails the release, if one does."""
    slot = formation.slot_of(baking.current())
    assert slot is not None
    check = config.healthcheck
    try:
        placements = place_slot(baking.ctx.runtime, slot, config.port, judge.last_seen)
    except TempsError as error:  # the engine does not answer: no telling where they run
        baking.log.warning("bake.runtime_unavailable", error=str(error))
        return None
    failing = None
    for placement in placements:
        where = placement.now
        result = probe(where.url + check.path, check.timeout) if where is not None else None
        judged = judge.judge(placement, result, time.monotonic())
        if judged.line is not None:
            baking.say(judged.line)
        if judged.decisive and failing is None:
            failing = judged
    return failing


def flip_back(baking: Deploy, standby: Release, failing: Judged) -> bool:
    """Route back to the standby's containers that run on a node that is up and answer, then
    fail and stop the release that went bad. False when none of them can serve (or Traefik
    does not confirm): the release stays live, and the log says why."""
    ctx = baking.ctx
    reason = f"failed health during the bake window: {failing.reason}"
    standby = ctx.store.get_release(standby.pk)
    recorded = formation.slot_of(standby)
    assert recorded is not None
    config = standby.config
    try:
        serving, left_out = serving_now(ctx.runtime, recorded, config.port, config.healthcheck)
    except TempsError as error:
        serving, left_out = [], [str(error)]
    to = f"v{standby.number}"
    if not serving:
        baking.log.error("bake.flip_back_refused", to=to, reason=reason, standby=left_out)
        baking.say(
            f"-----> {reason}; no container of {to} can take over ({'; '.join(left_out)}): "
            f"{baking.label} stays live"
        )
        return False
    try:
        took = route_to(
            baking, Slot(tuple(serving)), to, config.healthcheck.path, config.skew.cookie
        )
    except DeployError as error:
        baking.log.error("bake.flip_back_failed", to=to, error=str(error))
        baking.say(f"-----> could not switch back to {to}: {error}; {baking.label} stays live")
        return False
    moved = recorded_as(recorded, serving)
    if moved != recorded:
        ctx.store.set_details(standby.pk, slot=formation.slot_record(moved, standby))
    tail = _tail_within(baking, failing.container, TAIL_SECONDS)
    # One state change after the other, nothing between: two live releases are never shown.
    baking.move_other(standby, S.LIVE)
    unkeep(baking, standby)  # live again: no longer reached by its id alone
    failed = baking.move(S.FAILED, failure=Failure(reason, "bake", tail))
    processes.replace(baking, failed, ctx.store.get_release(standby.pk))
    baking.log.warning("bake.flipped_back", to=to, reason=reason, servers=[i.url for i in serving])
    baking.say(f"-----> {reason}: switched back to {to} in {took * 1000:.0f} ms")
    if left_out:
        baking.say(f"-----> {to} serves without {'; '.join(left_out)}")
    send_in_background(ctx.sealer, baking.app, failed)
    report(ctx, baking.app, failed)  # its commit was reported live: it is not any more
    # It served until the flip: the requests it took before still finish on it.
    for leaving in Leaving.every(failed):
        retire_in_background(ctx, baking.app.name, leaving, baking.say)
    return True
