"""The attach of a one-off run: its streams over a WebSocket, until it exits, times out or its
client leaves.

Every message is binary, its first byte a channel, as Kubernetes' exec numbers them
(`v4.channel.k8s.io`); the rest is the payload:

    client -> daemon   0 stdin bytes (an empty payload: the end of stdin)
                       4 the terminal's size, JSON {"cols": 120, "rows": 40}
    daemon -> client   1 stdout bytes, 2 stderr bytes (a terminal's output is all on 1)
                       3 how it ended, JSON {"state", "exit_code", "detail"}: the last message

Output is passed on byte for byte, never decoded. The daemon reads the container's output
only as fast as the client takes it, so a slow client slows the command, not the daemon's
memory.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.abc
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pipeline.errors import TempsError
from pipeline.runs.oneoff import Ending
from pipeline.runtime import Attached, Terminal
from pipeline.sqlite.models import RunState
from receiver.waits import abandoned_on_cancel

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
PROTOCOL = "temps.run.v1"  # the WebSocket subprotocol, answered when the client offers it
LARGEST_TERMINAL = 1000  # columns or rows
# Its output ended and no exit code came: detached from, or removed (its app destroyed).
DETACHED = "its streams ended before it exited: detached from, or its container removed"

T = TypeVar("T")


async def blocking(function: Callable[..., T], *args: object) -> T:
    return await abandoned_on_cancel(function, *args)


async def relay(websocket: WebSocket, attached: Attached, stdin: bool, timeout: float) -> Ending:
    """Relay until the command's output ends (then its exit code is the ending), its client
    leaves, or `timeout` seconds pass."""
    endings: list[Ending] = []  # the first one found is the one

    def ended(ending: Ending, group: anyio.abc.TaskGroup) -> None:
        endings.append(ending)
        group.cancel_scope.cancel()

    async def give_output(group: anyio.abc.TaskGroup) -> None:
        frames = attached.output()
        try:
            while (frame := await blocking(next, frames, None)) is not None:
                stream, data = frame
                await websocket.send_bytes(bytes((stream,)) + data)
            code = await blocking(attached.exit_code)
        except WebSocketDisconnect:
            ended(gone(), group)
        except TempsError as error:
            ended(Ending(RunState.FAILED, detail=str(error)), group)
        else:
            if code is None:
                ended(Ending(RunState.FAILED, detail=DETACHED), group)
            else:
                ended(Ending(RunState.EXITED, code), group)

    async def take_input(group: anyio.abc.TaskGroup) -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await apply(attached, message.get("bytes"), stdin)
        except TempsError as error:
            ended(Ending(RunState.FAILED, detail=str(error)), group)
        else:
            ended(gone(), group)

    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as group:
            group.start_soon(give_output, group)
            group.start_soon(take_input, group)
    if endings:
        return endings[0]
    return Ending(RunState.TIMED_OUT, detail=f"still running after {timeout:g} s: killed")


def gone() -> Ending:
    return Ending(RunState.DISCONNECTED, detail="its client went away: killed")


async def apply(attached: Attached, data: bytes | None, stdin: bool) -> None:
    """One message of the client's; what is not understood is dropped."""
    if not data:
        return
    # Stdin bytes for a run without stdin are dropped: nothing would read them, and they
    # would fill the socket.
    channel, payload = data[0], data[1:]
    if channel == STDIN and stdin:
        if payload:
            await blocking(attached.send, payload)
        else:
            await blocking(attached.close_stdin)
    elif channel == RESIZE:
        terminal = terminal_of(payload)
        if terminal is not None:
            await blocking(attached.resize, terminal)


def terminal_of(payload: bytes) -> Terminal | None:
    try:
        size = json.loads(payload)
        cols, rows = int(size["cols"]), int(size["rows"])
    except (ValueError, TypeError, KeyError):
        return None
    if not (0 < cols <= LARGEST_TERMINAL and 0 < rows <= LARGEST_TERMINAL):
        return None
    return Terminal(cols, rows)


async def close(websocket: WebSocket, ending: Ending) -> None:
    """Tell the client how the run ended, and close; nothing when it has gone already."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    status = {"state": str(ending.state), "exit_code": ending.exit_code, "detail": ending.detail}
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_bytes(bytes((STATUS,)) + json.dumps(status).encode())
        await websocket.close(1000)
