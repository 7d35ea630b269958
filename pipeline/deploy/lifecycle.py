"""The life of a release, top to bottom: build, release phase, boot, gate, switch, bake or
drain, retire, prune, notify. Each step persists its state before its side effect; a failed
step stops the new slot and leaves the live one serving (`failure.fail`).
"""

from __future__ import annotations

from typing import Protocol

from pipeline import metrics
from pipeline.context import Context, Deploy
from pipeline.deploy.strategies.canary import canary
from pipeline.deploy.strategies.rolling import roll
from pipeline.errors import TempsError
from pipeline.sqlite.models import Release
from pipeline.steps.bake import bake
from pipeline.steps.boot import boot, gate
from pipeline.steps.build import Built, build, release_phase
from pipeline.steps.failure import crashed, fail
from pipeline.steps.notify import send_in_background
from pipeline.steps.prune import prune_images
from pipeline.steps.retire import retire_standby, stop_previous
from pipeline.steps.switch import Target, hand_over, switch, take_over_standby


class Lane(Protocol):
    """The app's deploy queue, as the story sees it."""

    def idle(self) -> bool:
        """No newer deploy waits, and the daemon is not stopping."""

    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True at once when a deploy comes or the daemon stops."""

    def retired(self) -> bool:
        """Wait until the app's old slots have drained and stopped; False if a deploy came."""


def deploy(ctx: Context, lane: Lane, release_id: int) -> None:
    run = Deploy.of(ctx, ctx.store.get_release(release_id))
    run.log.info("deploy.started", commit=run.release.commit[:12], source=run.release.source)
    standby = ctx.store.standby_release(run.app)  # the previous slot, in its bake window
    try:
        with ctx.slot_locks.of(run.app.name):  # no scaling meanwhile
            try:
                target = take_over_standby(run, standby)  # a rollback to it: no boot
                if target is None:
                    retire_standby(run, standby)
                    built = build(run)
                    release_phase(run, built)
                    target = start(run, built, lane)
                switch(run, target)
            except TempsError as error:
                fail(run, error)
            else:
                hand_over(run, target)  # the previous slot bakes, or drains and retires
    except Exception as exc:
        crashed(run, exc)
    finally:
        final = answer(run)
    notify(run, final)
    # What follows yields to a deploy already waiting (a rollback, say), which prunes in turn.
    if lane.idle():
        bake(run, lane.pause)
    if lane.retired():
        prune_images(ctx, run.current())


def start(run: Deploy, built: Built, lane: Lane) -> Target:
    """The new slot, booted and gated (and judged) as the strategy says."""
    if built.strategy == "rolling":
        return roll(run, built)  # one container at a time, each swapped in as it passes
    if built.strategy == "recreate":
        stop_previous(run)
    slot = boot(run, built)
    gate(run, built, slot)
    target = Target(slot, built.config)
    if built.strategy == "canary":
        canary(run, target, lane.pause)  # a share of the requests first; withdrawn if worse
    return target


def answer(run: Deploy) -> Release:
    """The pusher has its answer: the release's log ends, whatever else fails. Returns the
    release as the deploy left it."""
    try:
        final = run.current()
        metrics.deploys.inc(run.app.name, final.state)
        run.log.info("deploy.finished", state=final.state)
        return final
    finally:
        run.ctx.journal.finish(run.id)


def notify(run: Deploy, final: Release) -> None:
    try:
        send_in_background(run.ctx.sealer, run.app, final)
    except TempsError as exc:
        run.log.warning("notify.failed", error=str(exc))
