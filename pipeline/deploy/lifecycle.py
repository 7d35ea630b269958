"""The life of a release, top to bottom: room on the disks, build, release phase, boot, gate,
switch, bake or drain, retire, prune, notify. Each step persists its state before its side
effect; a failed step stops the new slot and leaves the live one serving (`failure.fail`).
The commit hears of it twice: pending as the deploy starts, and how it ended (`statuses`).
"""

from __future__ import annotations

from pipeline import metrics
from pipeline.context import Context, Deploy
from pipeline.deploy.strategies import Strategy
from pipeline.deploy.strategy import Lane, Plan, plan_of
from pipeline.errors import TempsError
from pipeline.sqlite.models import Release
from pipeline.statuses.report import report
from pipeline.steps.bake import bake
from pipeline.steps.build import build, release_phase
from pipeline.steps.failure import crashed, fail
from pipeline.steps.notify import send_in_background
from pipeline.steps.prune import prune_images
from pipeline.steps.retire import retire_standby
from pipeline.steps.setup import preview_setup
from pipeline.steps.skew import standby_leaving
from pipeline.steps.space import check_free_space
from pipeline.steps.switch import Target, hand_over, switch, take_over_standby


def deploy(ctx: Context, lane: Lane, release_id: int) -> None:
    run = Deploy.of(ctx, ctx.store.get_release(release_id))
    run.log.info("deploy.started", commit=run.release.commit[:12], source=run.release.source)
    report(ctx, run.app, run.release)  # pending
    standby = ctx.store.standby_release(run.app)  # the previous slot, in its bake window
    try:
        with ctx.slot_locks.of(run.app.name):  # no scaling meanwhile
            try:
                plan, target = start(run, standby, lane)
                switch(run, target)
            except TempsError as error:
                fail(run, error)
            else:
                hand_over(run, target, plan.hand_over)  # the old slot bakes, drains or is gone
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


def start(run: Deploy, standby: Release | None, lane: Lane) -> tuple[Plan, Target]:
    """The new slot, started as its strategy says, and the strategy that hands over to it."""
    target = take_over_standby(run, standby)  # a rollback inside the bake window: no boot
    if target is not None:
        return plan_of(Strategy.BLUE_GREEN), target  # the standby comes back as blue-green
    check_free_space(run)  # before anything is built, booted or stopped
    retire_standby(run, standby, standby_leaving(run, standby))  # [skew] may keep some
    built = build(run)
    preview_setup(run, built)  # a preview's first release only
    release_phase(run, built)
    plan = plan_of(built.strategy)
    return plan, plan.start(run, built, lane)


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
    """Tell the commit (live, failed) and the app's notification URL how the deploy ended."""
    report(run.ctx, run.app, final)
    try:
        send_in_background(run.ctx.sealer, run.app, final)
    except TempsError as exc:
        run.log.warning("notify.failed", error=str(exc))
