"""Recreate, for apps that must never run twice (a single writer, a licence per host): the
live slot drains and stops before the new one boots. The app answers 503 from then until
the switch: downtime, by choice. Nothing is left to bake or drain afterwards."""

from __future__ import annotations

from pipeline.context import Deploy
from pipeline.deploy.strategies import blue_green
from pipeline.deploy.strategy import Lane
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import Release
from pipeline.steps.build import Built
from pipeline.steps.retire import Leaving, drain_and_stop
from pipeline.steps.switch import Target
from pipeline.traefik import publish

# A standby that drains and stops in the background is waited for this long at most.
RETIREMENT_WAIT_SECONDS = 3600.0


def start(run: Deploy, built: Built, lane: Lane) -> Target:
    stop_previous(run)
    return blue_green.start(run, built, lane)


def hand_over(run: Deploy, target: Target, previous: Release | None) -> None:
    # The previous release was retired before the boot: the new slot simply goes live.
    blue_green.hand_over(run, target, previous)


def stop_previous(deploy: Deploy) -> None:
    """The old slots drain and stop; a standby still draining in the background is waited
    for too."""
    ctx = deploy.ctx
    previous = ctx.store.live_release(deploy.app)
    if previous is not None:
        deploy.move(S.DRAINING)
        deploy.say(f"-----> recreate: stopping v{previous.number} before starting {deploy.label}")
        # Out of Traefik first, or new requests would keep its drain from ever ending: from
        # here until the switch the app answers 503.
        if not publish.unroute(ctx.settings, deploy.app.name, deploy.label):
            deploy.say("-----> Traefik did not confirm the app's route without a server; going on")
        deploy.move_other(previous, S.RETIRED)
        for leaving in Leaving.every(previous):
            drain_and_stop(ctx, leaving, deploy.say)
    if ctx.retirements.busy(deploy.app.name):
        deploy.say("-----> recreate: waiting for the standby slot to drain and stop")
        ctx.retirements.wait(deploy.app.name, RETIREMENT_WAIT_SECONDS)
