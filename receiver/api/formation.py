"""The API of an app's formation: how many containers of each process type its releases run,
and the containers of its live release with their state."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, Strict

from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.runtime import LOOPBACK
from pipeline.sqlite.models import App, Counts
from pipeline.supervision import census, stopping
from pipeline.supervision.census import Census
from pipeline.supervision.scale import scale
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


# Process type -> count; the types and counts are checked by `formation.checked`.
FormationRequest = dict[Annotated[str, Field(max_length=64)], Annotated[int, Strict()]]


class ContainerView(View):
    """One container of the live release, as Docker sees it now."""

    process: str
    container: str
    host_port: int | None  # web containers only: the port Traefik reaches it on, at `address`
    address: str | None = None  # its address on the home's bridge, its node's; None: loopback
    node: str | None  # where it runs, when the runtime says
    release: str | None  # "v<number>"
    state: str  # Docker's: created, running, restarting, exited, dead; or missing
    restarts: int
    uptime: float | None  # seconds, while running


class LeavingView(View):
    """A web container of a release that left the route and still holds connections: it
    stays up for them until its handover (`drain_timeout`), then hands them over."""

    release: str  # "v<number>"
    container: str
    connections: int  # open to it now, as its drain counted last
    since: float  # epoch seconds: when its drain began
    handover_at: float | None  # epoch seconds: when its handover begins (or began)
    handing_over: bool


class FormationView(View):
    app: str
    formation: Counts  # what the app's releases run from now on
    live_release: str | None
    live_formation: Counts | None  # what its live release runs
    processes: Census | None  # running against wanted, by process type, counted now
    stopped: list[str]  # process types stopped on purpose (`temps ps stop`)
    containers: list[ContainerView]
    leaving: list[LeavingView] = Field(default_factory=list)  # oldest first


class ProcessChoice(Body):
    """The process types to stop or start; none named: every one."""

    processes: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )


def formation_view(daemon: Daemon, app: App) -> FormationView:
    live = daemon.store.live_release(app)
    slot = formation.slot_of(live) if live is not None else None
    web = [(WEB, i.container, i) for i in slot.instances] if slot else []
    background = formation.workers_of(live) if live is not None else {}
    listed = web + [(p, name, None) for p, names in background.items() for name in names]
    now = time.time()
    node_of = {name: node.name for node in daemon.runtime.nodes() for name in node.containers}
    containers = []
    for process, name, recorded in listed:
        state = daemon.runtime.state(name)
        started = state.started_at
        containers.append(
            ContainerView(
                process=process,
                container=name,
                host_port=recorded.port if recorded else None,
                address=recorded.address if recorded and recorded.address != LOOPBACK else None,
                node=node_of.get(name),
                release=f"v{live.number}" if live else None,
                state=state.status,
                restarts=state.restarts,
                uptime=round(now - started, 1) if started and state.status == "running" else None,
            )
        )
    running = {c.container for c in containers if c.state == "running"}
    return FormationView(
        app=app.name,
        formation=formation.checked(app.formation, {}),
        live_release=f"v{live.number}" if live else None,
        live_formation=live.formation if live else None,
        processes=census.count(app, live, running) if live else None,
        stopped=app.stopped,
        containers=containers,
        leaving=[
            LeavingView(
                release=w.release,
                container=w.container,
                connections=w.connections,
                since=round(w.since, 3),
                handover_at=round(w.handover_at, 3) if w.handover_at else None,
                handing_over=w.handing_over,
            )
            for w in daemon.deployer.ctx.retirements.leaving(app.name)
        ],
    )


@router.get("/apps/{name}/formation")
async def get_formation(name: str, daemon: DaemonDep, who: PrincipalDep) -> FormationView:
    # Docker is asked about each container: not on the event loop.
    app = await run_in_threadpool(app_for, daemon, who, name)
    return await run_in_threadpool(formation_view, daemon, app)


@router.patch("/apps/{name}/formation")
def set_formation(
    name: str, body: FormationRequest, daemon: DaemonDep, who: PrincipalDep
) -> FormationView:
    """The formation of the app's live release, changed at once without a release (added
    containers are gated before they are routed, removed ones drained), and of its next ones."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    before = app.formation
    live = daemon.store.live_release(app)
    known = set(live.config.processes) if live is not None else None
    wanted = formation.checked(app.formation, body, known)
    app = daemon.store.update_app(app.name, formation=wanted)
    try:
        scale(daemon.deployer.ctx, app, wanted)
    except TempsError:
        app = daemon.store.update_app(app.name, formation=before)
        raise
    if wanted != before:
        label = " ".join(f"{process}={count}" for process, count in sorted(wanted.items()))
        daemon.store.series.mark(app, "scale", f"scaled to {label}")
    return formation_view(daemon, app)


@router.post("/apps/{name}/stop")
def stop_processes(
    name: str, daemon: DaemonDep, who: PrincipalDep, body: ProcessChoice | None = None
) -> FormationView:
    """Stop the app (or the process types named) on purpose: its web answers 503 with
    `Retry-After`, nothing restarts it until it is started again."""
    who.require_admin()
    app_to_change(daemon, who, name)
    app = stopping.stop(daemon.deployer.ctx, name, body.processes if body else [])
    return formation_view(daemon, app)


@router.post("/apps/{name}/start")
def start_processes(
    name: str, daemon: DaemonDep, who: PrincipalDep, body: ProcessChoice | None = None
) -> FormationView:
    """Start what `stop` stopped (or the process types named): web containers are gated
    before they are routed."""
    who.require_admin()
    app_to_change(daemon, who, name)
    app = stopping.start(daemon.deployer.ctx, name, body.processes if body else [])
    return formation_view(daemon, app)
