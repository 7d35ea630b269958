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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pipeline.context import Context, Deploy
from pipeline.drain.wait import Handover, Watch, drain
from pipeline.errors import TempsError
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
    handover_window: float = 0.0
    handover_signal: str = ""

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
            deploy.handover_window,
            deploy.handover_signal,
        )

    @classmethod
    def every(cls, release: Release) -> list[Leaving]:
        """Each container of the release's slot."""
        found = (cls.of(release, name) for name in formation.containers_of(release))
        return [leaving for leaving in found if leaving is not None]

    @property
    def urls(self) -> set[str]:
        return {f"http://{self.address}:{port}" for port in self.ports}

    def within(self, seconds: float) -> Leaving:
        """The same slot, its drain bounded by `seconds` too: a destroy or a `temps ps stop`
        does not wait hours for a WebSocket before it hands the connections over."""
        return dataclasses.replace(self, drain_timeout=min(self.drain_timeout, seconds))

    def watch(self) -> Watch:
        return Watch(self.container, self.label, bool(self.ports))


# What a deliberate stop (destroy, `temps ps stop`) and the pusher's answer wait of a drain.
DELIBERATE_DRAIN_SECONDS = 30.0


def drain_slot(
    ctx: Context,
    leaving: Leaving,
    say: Say,
    watch: Watch | None = None,
    begun: Drained | None = None,
    hand_over: bool = True,
) -> Drained:
    """Wait until nothing is in flight on the slot, at most its drain_timeout; then hand
    the connections it still holds over to the live release, a few at a time (unless
    `hand_over` is false: the drain is then only waited on, to be finished later)."""
    how = Handover(leaving.handover_window, _signal(ctx, leaving)) if hand_over else None
    drained = drain(
        leaving.container,
        leaving.ports,
        leaving.drain_timeout,
        leaving.address,
        how,
        watch,
        begun,
    )
    if not leaving.ports:
        return drained  # a background process: nothing routed to it
    if drained.handed_over:
        say(
            f"-----> {leaving.label} held {drained.handed_over} connection"
            f"{'s' if drained.handed_over != 1 else ''} past drain_timeout "
            f"{leaving.drain_timeout:g}s: handed over to the live release within "
            f"{leaving.handover_window:g}s, oldest first"
        )
    elif drained.complete:
        say(f"-----> {leaving.label} drained in {drained.seconds:.1f}s")
    elif hand_over:
        say(
            f"-----> {leaving.label} still busy after drain_timeout {leaving.drain_timeout:g}s; "
            "stopping it anyway"
        )
    else:
        say(
            f"-----> {leaving.label} still holds connections after {drained.seconds:.1f}s: "
            "it stays up for them in the background"
        )
    log.info(
        "deploy.drained",
        old=leaving.label,
        drained=drained.complete,
        seconds=round(drained.seconds, 3),
        handed_over=drained.handed_over,
    )
    return drained


def _signal(ctx: Context, leaving: Leaving) -> Callable[[], None] | None:
    """The app's own word that its handover begins, when it asked for one."""
    name = leaving.handover_signal
    if not name or not leaving.ports:
        return None

    def send() -> None:
        try:
            ctx.runtime.signal(leaving.container, name)
        except TempsError as error:
            log.warning("deploy.signal_failed", container=leaving.container, error=str(error))

    return send


def drain_and_stop(
    ctx: Context,
    leaving: Leaving,
    say: Say,
    begun: Drained | None = None,
    watch: Watch | None = None,
) -> None:
    """Drain, stop, report. `begun`: the slot's drain as far as the pusher's answer waited
    for it; it goes on from there unless nothing was left in flight."""
    drained = begun
    if drained is None or not drained.complete:
        drained = drain_slot(ctx, leaving, say, watch, begun)
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
    ctx: Context, app: str, leaving: Leaving | None, say: Say, begun: Drained | None = None
) -> None:
    if leaving is not None:
        watch = leaving.watch()
        ctx.retirements.start(app, watch, lambda: drain_and_stop(ctx, leaving, say, begun, watch))


def record_drain(ctx: Context, release_id: int, drained: Drained, finished: int) -> None:
    """The drained release's traffic record gains how long it drained and what it finished."""
    figures = DrainRecord(
        seconds=round(drained.seconds, 3),
        complete=drained.complete,
        finished=finished,
        timeout=drained.timeout,
        started_at=drained.started_at,
        ended_at=drained.ended_at,
        handed_over=drained.handed_over,
    )
    ctx.store.add_traffic(release_id, TrafficRecord(drain=figures))


def retire_standby(deploy: Deploy, standby: Release | None, leaving: list[Leaving]) -> None:
    """A newer deploy ends a bake window early: the previous slot drains and goes (its
    containers in `leaving`: skew protection may keep some).

    It may still finish requests that began before the last switch; it does so in the
    background while this deploy builds and is gated."""
    if standby is None:
        return
    deploy.move_other(standby, S.RETIRED)
    deploy.say(f"-----> v{standby.number} leaves its bake window early: draining it meanwhile")
    for one in leaving:
        retire_in_background(deploy.ctx, deploy.app.name, one, deploy.say)
