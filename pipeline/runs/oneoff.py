"""A one-off run as a story: asked for, started once its client attaches, ended and removed.

Its container is the live web container's twin in all but its command: the release's image,
its environment (`PORT` too), the app's volumes and the web process's limits; on the home's
bridge, which the live containers do not talk across, and in no route. The live release never
notices it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from pipeline.context import Context
from pipeline.errors import Conflict, TempsError
from pipeline.runs.asked import Asked
from pipeline.runs.inflight import InFlight, Ticket
from pipeline.runtime import Attached, ContainerSpec
from pipeline.sqlite.models import App, Release, RunState
from pipeline.steps.build import handover_env, one_off_spec

log = structlog.get_logger()
PROCESS = "run"  # its `temps.process` label, and the start of its container's role


@dataclass(frozen=True)
class Ending:
    """How a run ended: one of the final `RunState`s, the command's exit code when it exited
    by itself, and why it ended otherwise."""

    state: RunState
    exit_code: int | None = None
    detail: str | None = None


def ask(ctx: Context, inflight: InFlight, app: App, who: str, asked: Asked) -> Ticket:
    """Hold a place for the run and record it, from the app's live release."""
    live = ctx.store.live_release(app)
    if live is None or live.image is None:
        raise Conflict(
            f"app {app.name!r} has no live release to run a command from: deploy it first "
            "(git push)"
        )
    number = live.number

    def record() -> int:
        return ctx.store.runs.ask(app, number, who, list(asked.command), asked.tty).pk

    ticket = inflight.admit(app.name, who, asked, number, record)
    log.info("run.asked", app=app.name, run=ticket.run_id, release=f"v{number}", who=who)
    return ticket


def start(ctx: Context, inflight: InFlight, app: App, ticket: Ticket) -> Attached:
    """Its container, attached and started; a run that cannot start ends as failed."""
    try:
        release = ctx.store.release_by_number(app, ticket.release)
        spec = container_spec(ctx, app, release, ticket.asked)
        attached = ctx.runtime.run_attached(spec, ticket.asked.stdin, ticket.asked.terminal)
    except TempsError as error:
        end(ctx, inflight, ticket, None, Ending(RunState.FAILED, detail=str(error)))
        raise
    ctx.store.runs.started(ticket.run_id, spec.name)
    log.info(
        "run.started",
        app=app.name,
        run=ticket.run_id,
        release=f"v{ticket.release}",
        who=ticket.who,
        container=spec.name,
        tty=ticket.asked.tty,
    )
    return attached


def end(
    ctx: Context, inflight: InFlight, ticket: Ticket, attached: Attached | None, ending: Ending
) -> None:
    """Record how it ended, then remove its container and let its place go."""
    try:
        record_end(ctx, ticket, attached, ending)
    finally:
        clear(inflight, ticket, attached)


def record_end(ctx: Context, ticket: Ticket, attached: Attached | None, ending: Ending) -> None:
    """How it ended, in the records and the log: what its client is told next."""
    ctx.store.runs.ended(ticket.run_id, ending.state, ending.exit_code, ending.detail)
    seconds = time.monotonic() - (ticket.attached_at or ticket.asked_at)
    log.info(
        "run.finished",
        app=ticket.app,
        run=ticket.run_id,
        release=f"v{ticket.release}",
        who=ticket.who,
        container=attached.name if attached is not None else None,
        tty=ticket.asked.tty,
        state=str(ending.state),
        exit_code=ending.exit_code,
        seconds=round(seconds, 3),
    )


def clear(inflight: InFlight, ticket: Ticket, attached: Attached | None) -> None:
    """Remove its container (killing what still runs, a run that timed out), then let its
    place go: the app's bound on runs counts a run until its container is gone."""
    try:
        if attached is not None:
            attached.remove()
    finally:
        inflight.leave(ticket)


def expired(ctx: Context, ticket: Ticket) -> None:
    """A run no client attached to in time (InFlight's `expired`, on a timer's thread)."""
    detail = f"no client attached within {ctx.settings.run_attach_timeout:g} s"
    try:
        ctx.store.runs.ended(ticket.run_id, RunState.EXPIRED, detail=detail)
    except TempsError as error:  # the records busy: the next start marks it interrupted
        log.error("run.expiry_not_recorded", app=ticket.app, run=ticket.run_id, error=str(error))
        return
    log.info("run.expired", app=ticket.app, run=ticket.run_id, who=ticket.who)


def container_spec(ctx: Context, app: App, release: Release, asked: Asked) -> ContainerSpec:
    env = handover_env(release.config)
    return one_off_spec(ctx, app, release, PROCESS, PROCESS, command=asked.command, env=env)
