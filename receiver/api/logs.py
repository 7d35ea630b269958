"""An app's runtime logs: what its containers print, as `temps logs` and the dashboard show it.

`GET /api/apps/<app>/logs` answers the newest lines of the containers that serve the app,
then with `follow=true` every line they print next, following the app across deploys,
scaling and restarts (`pipeline.applogs`). As text, a line reads
`2025-06-01T10:00:00.123456Z web.1 v2: text`, the text as the app printed it, whatever its
bytes; asked for `text/event-stream`, each line is an event whose data is a JSON object.

The pipeline's tail runs on threads; here its lines are handed to the response from a
waiting thread (`receiver.waits`), and the tail is closed however the response ends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from pipeline.applogs import sources
from pipeline.applogs.lines import MAX_LINES, Notice, since_ns, stamp
from pipeline.applogs.tail import AppTail, Item, TailRequest
from receiver.api.apps import DaemonDep, PrincipalDep, app_for
from receiver.auth import Principal
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES, Responses
from receiver.waits import waiting

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
EVENT_STREAM = "text/event-stream"
TEXT = "text/plain; charset=utf-8"
TAKE_WAIT = 1.0  # seconds a waiting thread waits for lines before it looks again
KEEPALIVE_SECONDS = 15.0  # an event stream's comment line while the app prints nothing
STREAMED = {"schema": {"type": "string"}}
LOG_ANSWER: Responses = {
    200: {
        "description": "Lines as text, or as server-sent events for `Accept: text/event-stream`",
        "content": {"text/plain": STREAMED, EVENT_STREAM: STREAMED},
    }
}


@router.get("/apps/{name}/logs", response_class=StreamingResponse, responses=LOG_ANSWER)
async def app_logs(
    name: str,
    request: Request,
    daemon: DaemonDep,
    who: PrincipalDep,
    follow: bool = False,
    lines: Annotated[int | None, Query(ge=0, le=MAX_LINES)] = None,
    process: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """The app's runtime logs: the newest `lines` (100 by default; with `since`, all since
    then) of its containers' stdout and stderr, oldest first; with `follow`, then every line
    they print next until the client leaves. `since`: `10m`, `90s`, `2h`, `1d` or an RFC 3339
    time. 409 when nothing of the app has gone live yet."""
    wanted = TailRequest(process, lines, since_ns(since) if since else None, follow)
    tail, first = await run_in_threadpool(open_tail, daemon, who, name, wanted)
    return TailResponse(tail, first, EVENT_STREAM in request.headers.get("accept", ""))


def open_tail(
    daemon: Daemon, who: Principal | None, name: str, wanted: TailRequest
) -> tuple[AppTail, list[Item]]:
    """The app's tail and its first lines; `who` None: a dashboard session (admin)."""
    app = app_for(daemon, who, name) if who is not None else daemon.store.get_app(name)
    sources.check(daemon.store, app, wanted.process)
    tail = daemon.tails.open(app.name, wanted)
    try:
        return tail, tail.backlog()
    except BaseException:
        tail.close()
        raise


class TailResponse(StreamingResponse):
    """A tail's lines, as text or as events. The tail is closed however the response ends,
    and the client's leaving ends it even while the app prints nothing: the disconnect is
    listened for, not only noticed at the next write."""

    def __init__(self, tail: AppTail, first: list[Item], events: bool) -> None:
        self.tail = tail
        self.events = events
        render = as_event if events else as_text
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        media_type = EVENT_STREAM if events else TEXT
        super().__init__(self._body(first, render), headers=headers, media_type=media_type)

    async def _body(
        self, first: list[Item], render: Callable[[Item], bytes]
    ) -> AsyncIterator[bytes]:
        if first:
            yield b"".join(render(line) for line in first)
        elif self.events:
            yield b": tail\n\n"  # the browser's stream is open: nothing printed yet
        if not self.tail.request.follow:
            return
        self.tail.start()
        quiet = 0.0
        while not self.tail.closed:
            items = await waiting(self.tail.take, TAKE_WAIT)
            if items:
                quiet = 0.0
                yield b"".join(render(item) for item in items)
            elif self.events:
                quiet += TAKE_WAIT
                if quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def respond() -> None:
                    with contextlib.suppress(OSError):  # the client went mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(respond)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self.tail.close()


def as_text(item: Item) -> bytes:
    return item.text()


def as_event(item: Item) -> bytes:
    """One server-sent event: `notice` for the tail's own, the default type for a line."""
    if isinstance(item, Notice):
        data = json.dumps({"at": stamp(item.at), "notice": item.message})
        return f"event: notice\ndata: {data}\n\n".encode()
    label = item.label
    data = json.dumps(
        {
            "at": stamp(item.at),
            "process": label.process,
            "instance": label.instance,
            "name": str(label),
            "release": label.release,
            "container": label.container,
            "text": item.line.text.decode("utf-8", "replace"),
        }
    )
    return f"data: {data}\n\n".encode()
