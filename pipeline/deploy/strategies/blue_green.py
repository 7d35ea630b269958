"""Blue-green, the default: the new slot boots beside the live one and is gated; one switch
sends every request to it; the slot it replaces stays up, idle, for the bake window (a
rollback then is a pointer flip), or drains and retires at once when there is none. Either
way, once it is replaced, `[skew]` may keep some of it for the requests that name it."""

from __future__ import annotations

from pipeline.context import Deploy
from pipeline.deploy.strategy import Lane
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import Release
from pipeline.steps.boot import boot, gate
from pipeline.steps.build import Built
from pipeline.steps.retire import DELIBERATE_DRAIN_SECONDS, drain_slot, retire_in_background
from pipeline.steps.skew import keep_replaced, keep_standby
from pipeline.steps.switch import Target, go_live


def start(run: Deploy, built: Built, lane: Lane) -> Target:
    slot = boot(run, built)
    gate(run, built, slot)
    return Target(slot, built.config)


def hand_over(run: Deploy, target: Target, previous: Release | None) -> None:
    """The previous slot bakes in standby, or drains; the pusher's answer comes once it is
    drained, and it stops in the background."""
    bake = target.config.deploy.bake
    if previous is None:
        go_live(run, target.slot)
    elif bake > 0:
        go_live(run, target.slot)
        run.move_other(previous, S.STANDBY)
        run.say(f"-----> v{previous.number} stays up, idle, for the {bake:g}s bake window")
        keep_standby(run, previous, target.config)  # reachable by its id from the switch on
    else:
        run.move(S.DRAINING)
        # The requests in flight are the old release's: its own drain_timeout bounds them.
        # Traefik left all its containers at once: after the first, the others drain at once.
        # Those kept for skew protection (`[skew]`) are routed again by release id instead.
        # The pusher's answer waits for requests to end, not for a WebSocket's hours: what a
        # slot still holds after DELIBERATE_DRAIN_SECONDS drains and is handed over later.
        leaving = keep_replaced(run, previous, target.config)
        drained = [
            drain_slot(run.ctx, one.within(DELIBERATE_DRAIN_SECONDS), run.say, hand_over=False)
            for one in leaving
        ]
        go_live(run, target.slot)
        run.move_other(previous, S.RETIRED)
        # Drained and retired, the old slot gets no request any more: as on Heroku, the
        # pusher has its answer without waiting for Docker to stop it (0.3-1 s here), and
        # the app's next deploy (a rollback, say) does not wait for it either.
        for one, done in zip(leaving, drained, strict=True):
            retire_in_background(run.ctx, run.app.name, one, run.say, done)
