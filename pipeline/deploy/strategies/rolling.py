"""The rolling strategy, for apps that cannot afford twice their memory: the live release's
web containers are replaced one at a time. Each new container is booted and gated, then one
route change swaps it in for an old one, which drains and stops before the next new one
boots; the app never runs more than one container beyond its formation.

Both releases serve side by side until the last swap. If a new container fails its gate,
the swaps made so far are undone the same way (the old release's image boots again, gated,
and takes its place back) and the deploy fails: the app is left running the old release.
There is no bake window afterwards (nothing of the old release is left to flip back to); a
rollback is a new release that rolls the same way.
"""

from __future__ import annotations

from pipeline.context import Deploy
from pipeline.deploy.strategies import blue_green
from pipeline.deploy.strategy import Lane
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import Instance, Slot
from pipeline.sqlite.models import Release
from pipeline.steps.boot import role, start_gated
from pipeline.steps.build import Built, built_of
from pipeline.steps.retire import Leaving, drain_and_stop
from pipeline.steps.switch import Target, go_live, route_to


def start(run: Deploy, built: Built, lane: Lane) -> Target:
    """Replace the live web containers one by one; returns the new slot, already routed."""
    live = run.ctx.store.live_release(run.app)
    old = formation.slot_of(live) if live is not None else None
    if live is None or old is None:  # nothing to replace: as blue-green
        return blue_green.start(run, built, lane)
    count = formation.web_count(run.release.formation)
    run.move(S.BOOTING, container=_name(run, run.release, 0))
    run.move(S.HEALTH_CHECKING)
    run.say(f"-----> rolling: replacing {len(old.instances)} web containers one at a time")
    new: list[Instance] = []
    old_left = list(old.instances)
    try:
        for index in range(count):
            new.append(_started(run, run.release, built, index))
            _swap(run, live, new, old_left, leaving=old_left[:1])
            old_left = old_left[1:]
        if old_left:  # a smaller formation: the rest go
            _swap(run, live, new, old_left, leaving=old_left)
    except TempsError:
        _undo(run, live, new, old_left, len(old.instances) - len(old_left))
        raise
    return Target(Slot(tuple(new)), built.config)


def hand_over(run: Deploy, target: Target, previous: Release | None) -> None:
    """The live slot is gone already, container by container: no bake, no drain."""
    go_live(run, target.slot)
    if previous is not None:
        run.move_other(previous, S.RETIRED)


def _name(run: Deploy, release: Release, index: int) -> str:
    return run.ctx.runtime.container_name(run.app.name, release.number, role(index))


def _started(run: Deploy, release: Release, built: Built, index: int) -> Instance:
    """One web container of `release` booted and gated; removed if it fails."""
    name = _name(run, release, index)
    run.say(f"-----> rolling: starting {name}")
    return start_gated(run, built, name, release)


def _swap(
    run: Deploy,
    live: Release,
    new: list[Instance],
    kept: list[Instance],
    leaving: list[Instance],
) -> None:
    """Route to `new` and the old containers after `leaving`, then drain and stop `leaving`."""
    serving = Slot(tuple(new) + tuple(o for o in kept if o not in leaving))
    route_to(run, serving, run.label, live.config.healthcheck.path, live.config.skew.cookie)
    run.ctx.store.set_details(run.id, slot=formation.slot_record(Slot(tuple(new))))
    _record_live(run, live, [o for o in kept if o not in leaving])
    _stop(run, live, leaving)


def _undo(
    run: Deploy, live: Release, new: list[Instance], old_left: list[Instance], gone: int
) -> None:
    """Put the old release's containers back, one at a time, in place of the new ones."""
    if gone:
        run.say(f"-----> rolling: putting back the {gone} of v{live.number} already replaced")
    built, path = built_of(live), live.config.healthcheck.path
    restored: list[Instance] = []
    for index in range(gone):
        try:
            restored.append(_started(run, live, built, index))
        except TempsError as error:
            run.say(f"-----> rolling: v{live.number} did not come back: {error}")
            return  # the new containers left keep serving beside what is restored
        serving = Slot(tuple(restored + new[index + 1 :] + old_left))
        route_to(run, serving, f"v{live.number}", path, live.config.skew.cookie)
        _record_live(run, live, restored + old_left)
        _stop(run, run.release, [new[index]])
    kept = Slot(tuple(restored + old_left))
    route_to(run, kept, f"v{live.number}", path, live.config.skew.cookie)
    _stop(run, run.release, new[gone:])


def _record_live(run: Deploy, live: Release, serving: list[Instance]) -> None:
    if serving:
        record = formation.slot_record(Slot(tuple(serving)), run.ctx.store.get_release(live.pk))
        run.ctx.store.set_details(live.pk, slot=record)


def _stop(run: Deploy, release: Release, instances: list[Instance]) -> None:
    """Drain and stop containers that have left the route."""
    for instance in instances:
        leaving = Leaving.of(release, instance.container, (instance.port,), instance.address)
        if leaving is not None:
            drain_and_stop(run.ctx, leaving, run.say)
