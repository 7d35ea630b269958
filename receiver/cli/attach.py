"""The client's side of a one-off run's WebSocket (receiver.api.relay's protocol): opened with
the token that asked for the run, the command's output written here as it comes, what the
user types or pipes in and the terminal's size sent along, until its status arrives.

`websockets` is imported here and nowhere else in the CLI, so that the commands that do not
attach never import it (receiver.cli.run imports this module once a run is asked for)."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import sys
import threading
from collections.abc import Iterator
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from receiver.cli import terminal
from receiver.cli.client import detail_of
from receiver.cli.target import Target

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4  # receiver.api.relay's channels
PROTOCOL = "temps.run.v1"
OPEN_TIMEOUT = 60.0  # the attach's handshake: the container is started before it is answered
STDIN_CHUNK = 64 * 1024


class NotAttached(Exception):
    """The daemon refused the attach, or could not be reached: why, in a line."""


def session(target: Target, path: str, tty: bool, stdin: bool) -> dict[str, Any] | None:
    """Attach at `path` and relay until the run ends: its status, None when cut off;
    NotAttached when the attach is refused."""
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    with contextlib.ExitStack() as stack:
        socket = stack.enter_context(attach(target, path))
        if tty:
            stack.enter_context(terminal.raw(stdin_fd))
            resized = terminal.resizes(stdout_fd, lambda size: send_size(socket, size))
            stack.enter_context(resized)
        if stdin:
            reader = threading.Thread(
                target=send_stdin, args=(socket, stdin_fd, tty), name="stdin", daemon=True
            )
            reader.start()
        return relay(socket)


@contextlib.contextmanager
def attach(target: Target, path: str) -> Iterator[ClientConnection]:
    """The run's WebSocket, opened with the same token; NotAttached when it is refused."""
    url = "ws" + target.url.rstrip("/").removeprefix("http") + path
    secure = ssl.create_default_context(cafile=target.ca_file) if url.startswith("wss:") else None
    try:
        socket = connect(
            url,
            additional_headers={"Authorization": f"Bearer {target.token}"},
            subprotocols=[Subprotocol(PROTOCOL)],
            ssl=secure,
            open_timeout=OPEN_TIMEOUT,
            max_size=None,
        )
    except InvalidStatus as refused:
        reason = f"{refused.response.status_code}: {detail_of(refused.response.body)}"
        raise NotAttached(reason) from refused
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise NotAttached(f"cannot attach to the run at {url}: {exc}") from exc
    with socket:
        yield socket


def relay(socket: ClientConnection) -> dict[str, Any] | None:
    """Write the command's output as it comes; its status once it ends (None: cut off)."""
    try:
        for message in socket:
            if not isinstance(message, bytes) or not message:
                continue
            channel, payload = message[0], message[1:]
            if channel == STATUS:
                status: dict[str, Any] = json.loads(payload)
                return status
            out = sys.stdout if channel == STDOUT else sys.stderr if channel == STDERR else None
            if out is not None:
                out.buffer.write(payload)
                out.buffer.flush()
    except ConnectionClosed:
        return None
    return None


def send_stdin(socket: ClientConnection, fd: int, tty: bool) -> None:
    """What the user types or pipes in, as it comes; its end, without a terminal."""
    with contextlib.suppress(ConnectionClosed, OSError):
        while data := os.read(fd, STDIN_CHUNK):
            socket.send(bytes((STDIN,)) + data)
        if not tty:
            socket.send(bytes((STDIN,)))


def send_size(socket: ClientConnection, size: tuple[int, int]) -> None:
    cols, rows = size
    with contextlib.suppress(ConnectionClosed, OSError):
        socket.send(bytes((RESIZE,)) + json.dumps({"cols": cols, "rows": rows}).encode())
