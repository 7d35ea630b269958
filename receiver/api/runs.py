"""The API of one-off runs (`temps run`): ask for one, attach to it, list them.

`POST /api/apps/<app>/runs` checks the command and holds a place among the app's runs (429,
naming them, when they are at the limit); its answer names the WebSocket to attach at, within
`attach_within` seconds. Attaching starts the container; the protocol is receiver.api.relay's.
Like Heroku's dynos API: the POST's refusals are plain HTTP answers, and so are the attach's,
before the WebSocket is accepted.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from pipeline.runs import oneoff
from pipeline.runs.asked import checked
from pipeline.runs.inflight import Ticket
from pipeline.runtime import Attached
from pipeline.sqlite.models import RunState
from receiver.api import relay
from receiver.api.apps import Body, DaemonDep, Number, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES
from receiver.waits import waiting

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
TerminalSide = Annotated[int, Field(ge=1, le=relay.LARGEST_TERMINAL)]


class RunRequest(Body):
    command: list[str]  # the program and its arguments, run without a shell
    tty: bool = False  # a terminal (and stdin)
    stdin: bool = False  # the client sends stdin on the attach
    cols: TerminalSide | None = None  # the terminal's size, with tty (default 80x24)
    rows: TerminalSide | None = None
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None  # seconds


class RunView(View):
    id: int
    release: int  # the release whose image and environment it runs with
    who: str  # the token that asked for it
    command: list[str]
    tty: bool
    state: RunState
    container: str | None
    exit_code: int | None  # once it exited by itself
    detail: str | None  # why it ended, when not by itself
    created_at: float
    started_at: float | None
    ended_at: float | None


class AskedRun(RunView):
    attach_url: str  # the path of the WebSocket that starts it and carries its streams
    attach_within: float  # seconds, after which the run is given up


@router.post("/apps/{name}/runs", status_code=201)
def ask_run(name: str, body: RunRequest, daemon: DaemonDep, who: PrincipalDep) -> AskedRun:
    """Ask for a one-off run of the live release; attach to `attach_url` to start it."""
    app = app_to_change(daemon, who, name)
    asked = checked(
        body.command,
        stdin=body.stdin,
        tty=body.tty,
        size=(body.cols, body.rows),
        timeout=body.timeout,
        most_seconds=daemon.settings.run_timeout,
    )
    ticket = oneoff.ask(daemon.deployer.ctx, daemon.runs, app, who.name, asked)
    run = daemon.store.runs.get(app, ticket.run_id)
    return AskedRun(
        **dict(RunView.model_validate(run)),
        attach_url=f"/api/apps/{name}/runs/{run.pk}/attach",
        attach_within=daemon.settings.run_attach_timeout,
    )


@router.get("/apps/{name}/runs")
def list_runs(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[RunView]:
    """The app's one-off runs, newest first: who ran what, from which release, how it ended."""
    app = app_for(daemon, who, name)
    return [RunView.model_validate(run) for run in daemon.store.runs.of(app)]


@router.websocket("/apps/{name}/runs/{run_id}/attach")
async def attach(
    websocket: WebSocket, name: str, run_id: Number, daemon: DaemonDep, who: PrincipalDep
) -> None:
    """Start the run asked for and relay its streams (receiver.api.relay)."""
    ctx = daemon.deployer.ctx

    def start() -> tuple[Ticket, Attached]:
        app = app_to_change(daemon, who, name)
        ticket = daemon.runs.claim(name, run_id, who.name)
        return ticket, oneoff.start(ctx, daemon.runs, app, ticket)

    # A refusal or a container that will not start is an HTTP answer: not yet accepted.
    ticket, attached = await run_in_threadpool(start)
    ending = oneoff.Ending(RunState.FAILED, detail="the daemon failed while relaying it")
    try:
        offered = relay.PROTOCOL in websocket.scope.get("subprotocols", [])
        try:
            await websocket.accept(subprotocol=relay.PROTOCOL if offered else None)
        except WebSocketDisconnect:
            ending = relay.gone()  # it went away while the container started
        else:
            ending = await relay.relay(
                websocket, attached, ticket.asked.stdin, ticket.asked.timeout
            )
    finally:
        # Recorded and removed however the relay ended, a cancelled one included. The client
        # has its exit code as soon as it is recorded: as with `heroku run`, the prompt comes
        # back when the command ends, and the container is removed after (0.1 s here).
        with anyio.CancelScope(shield=True):
            try:
                await waiting(oneoff.record_end, ctx, ticket, attached, ending)
                await relay.close(websocket, ending)
            finally:
                await waiting(oneoff.clear, daemon.runs, ticket, attached)
