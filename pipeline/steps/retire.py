"""The one way out for a slot that may have served: drain it, then stop it, then say so.

Whatever ends such a slot comes through `drain_and_stop`: the end of the bake window, a
window cut short by the next deploy or a rollback, a flip back after a failed bake,
`recreate`, a switch that was published and then failed, an orphan found at start. The drain
is bounded by the slot's own `drain_timeout`, the stop by its `stop_timeout`; the runtime
stops a container only when handed the `Drained` that `drain` made for it.

Most retirements run in the background: nothing routes to the slot any more, so neither the
pusher nor the app's next deploy waits for it. A standby drains while the next release
builds and is gated, and that release's switch does not wait either, since it replaces the
live slot, not the standby. Pruning waits (Docker keeps an image a container uses), so does
`recreate` (its app must never run twice) and so does a daemon that stops, within its grace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pipeline.context import Context, Deploy
from pipeline.drain import drain
from pipeline.release import formation
from pipeline.release.records import DrainRecord, TrafficRecord
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import LOOPBACK, Drained
from pipeline.sqlite.models import Release
from pipeline.traefik.traffic import finished_during

log = structlog.get_logger()
Say = Callable[[str], None]


@dataclass(frozen=True)
class Leaving:
    """A slot on its way out: its container, the ports it served on, its limits."""

    container: str
    ports: tuple[int, ...]
    drain_timeout: float
    stop_timeout: float
    label: str  # "v3", or the container's name when no release owns it
    release_id: int | None = None
    address: str = LOOPBACK  # where the ports are: on the bridge, on loopback, on a node

    @classmethod
    def of(
        cls,
        release: Release,
        container: str | None = None,
        ports: tuple[int, ...] | None = None,
        address: str = LOOPBACK,
    ) -> Leaving | None:
        """One container of the release's (its first, by default); `ports` (at `address`):
        where the runtime publishes it now, if not where it was recorded."""
        container = container or release.container
        if container is None:
            return None
        deploy = release.config.deploy
        if ports is None:
            slot = formation.slot_of(release)
            recorded = [i for i in slot.instances if i.container == container] if slot else []
            ports = tuple(i.port for i in recorded)
            address = recorded[0].address if recorded else LOOPBACK
        return cls(
            container,
            ports,
            deploy.drain_timeout,
            deploy.stop_timeout,
            f"v{release.number}",
            release.id,
            address,
        )

    @classmethod
    def every(cls, release: Release) -> list[Leaving]:
        """Each container of the release's slot."""
        found = (cls.of(release, name) for name in formation.containers_of(release))
        return [leaving for leaving in found if leaving is not None]

    @property
    def urls(self) -> set[str]:
        return {f"http://{self.address}:{port}" for port in self.ports}


def drain_slot(leaving: Leaving, say: Say) -> Drained:
    """Wait until nothing is in flight on the slot, at most its drain_timeout."""
    drained = drain(leaving.container, leaving.ports, leaving.drain_timeout, leaving.address)
    if not leaving.ports:
        return drained  # a background process: nothing routed to it
    if drained.complete:
        say(f"-----> {leaving.label} drained in {drained.seconds:.1f}s")
    else:
        say(
            f"-----> {leaving.label} still busy after drain_timeout {leaving.drain_timeout:g}s; "
            "stopping it anyway"
        )
    log.info(
        "deploy.drained",
        old=leaving.label,
        drained=drained.complete,
        seconds=round(drained.seconds, 3),
    )
    return drained


def drain_and_stop(
    ctx: Context, leaving: Leaving, say: Say, drained: Drained | None = None
) -> None:
    """Drain (unless `drained` already holds the slot's drain), stop, report."""
    if drained is None:
        drained = drain_slot(leaving, say)
    finished = finished_during(
        ctx.settings.access_log, leaving.urls, drained.started_at, drained.ended_at
    )
    if leaving.release_id is not None and leaving.ports:
        record_drain(ctx, leaving.release_id, drained, finished)
    ctx.store.make_durable()  # the records that retire it outlive the container
    ctx.runtime.stop(drained, leaving.stop_timeout)
    if not leaving.ports:
        say(f"-----> Stopped {leaving.label} ({drained.container})")
        return
    say(
        f"-----> Stopped {leaving.label}: drained {drained.seconds:.1f}s, "
        f"{finished} request{'s' if finished != 1 else ''} finished during the drain"
    )


def retire_in_background(
    ctx: Context, app: str, leaving: Leaving | None, say: Say, drained: Drained | None = None
) -> None:
    if leaving is not None:
        ctx.retirements.start(
            app, leaving.container, lambda: drain_and_stop(ctx, leaving, say, drained)
        )


def record_drain(ctx: Context, release_id: int, drained: Drained, finished: int) -> None:
    """The drained release's traffic record gains how long it drained and what it finished."""
    figures = DrainRecord(
        seconds=round(drained.seconds, 3),
        complete=drained.complete,
        finished=finished,
        timeout=drained.timeout,
        started_at=drained.started_at,
        ended_at=drained.ended_at,
    )
    ctx.store.add_traffic(release_id, TrafficRecord(drain=figures))


def retire_standby(deploy: Deploy, standby: Release | None) -> None:
    """A newer deploy ends a bake window early: the previous slot drains and goes.

    It may still finish requests that began before the last switch; it does so in the
    background while this deploy builds and is gated."""
    if standby is None:
        return
    deploy.move_other(standby, S.RETIRED)
    deploy.say(f"-----> v{standby.number} leaves its bake window early: draining it meanwhile")
    for leaving in Leaving.every(standby):
        retire_in_background(deploy.ctx, deploy.app.name, leaving, deploy.say)
