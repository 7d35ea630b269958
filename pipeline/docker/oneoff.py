"""A one-off container with its streams attached (`temps run`), through the Engine API.

It is created, attached, and only then started, so that not a byte of its output is missed.
The engine hijacks the attach's HTTP connection: after the `101` the socket carries the
command's stdin one way and its output the other, stdout and stderr multiplexed in frames
(docker.utils.socket reads them) or, with a terminal, one raw stream.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests
from docker.utils.socket import frames_iter

from pipeline.docker.engine import being_removed, engine_errors
from pipeline.runtime import Terminal

# With a terminal the engine reads its own detach sequence from stdin (ctrl-p ctrl-q by
# default, and ctrl-p held back until the next key): a shell user types ctrl-p for the
# previous line. No key sequence turns it off, so this one is made unlikely to be typed.
# Without a terminal stdin is copied as it is.
DETACH_KEYS = "ctrl-@,ctrl-^,ctrl-@,ctrl-^,ctrl-@,ctrl-^"
# Once the output ends the command has exited: the engine answers `wait` at once. One that
# has not by then was detached from (above): it is killed with the run.
EXIT_WAIT_SECONDS = 10


class AttachedContainer:
    """`pipeline.runtime.Attached` on the one engine."""

    def __init__(self, api: docker.APIClient, name: str, stream: Any, tty: bool) -> None:
        self.api = api
        self.name = name
        self.tty = tty
        self._stream = stream  # what the SDK hands back: a SocketIO on a unix socket
        self._socket: socket.socket = getattr(stream, "_sock", stream)

    def output(self) -> Iterator[tuple[int, bytes]]:
        try:
            yield from frames_iter(self._stream, self.tty)
        except (OSError, ValueError):
            return  # the container was removed under the reader: its socket is shut

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self._socket.sendall(data)  # a command that exited reads no more

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)

    def resize(self, terminal: Terminal) -> None:
        with engine_errors("resize a terminal"), contextlib.suppress(docker.errors.APIError):
            # 409 or 404 once the command has exited: nothing left to resize.
            self.api.resize(self.name, height=terminal.rows, width=terminal.cols)

    def exit_code(self) -> int | None:
        with engine_errors("wait for a one-off container"):
            try:
                result = self.api.wait(self.name, timeout=EXIT_WAIT_SECONDS)
            except (requests.exceptions.ReadTimeout, docker.errors.NotFound):
                return None  # detached from, or removed meanwhile
        return int(result["StatusCode"])

    def remove(self) -> None:
        with (
            engine_errors("remove a one-off container"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            try:
                self.api.remove_container(self.name, force=True)
            except docker.errors.APIError as exc:
                if not being_removed(exc):  # its removal is under way already
                    raise
        # The engine closes its end as the container goes; shutting ours wakes a reader
        # still waiting on it whatever the engine did.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._stream.close()


def attach_and_start(
    api: docker.APIClient, name: str, stdin: bool, terminal: Terminal | None
) -> AttachedContainer:
    """Attach to the created container `name`, start it, give its terminal its size."""
    params: dict[str, int | str] = {"stdout": 1, "stderr": 1, "stream": 1}
    params["stdin"] = int(stdin or terminal is not None)
    if terminal is not None:
        params["detachKeys"] = DETACH_KEYS
    attached = AttachedContainer(
        api, name, api.attach_socket(name, params=params), tty=terminal is not None
    )
    api.start(name)
    if terminal is not None:
        # Docker before 23 takes no size at creation: the first prompt may be drawn at
        # 80x24, then the shell is told (SIGWINCH) its real size.
        attached.resize(terminal)
    return attached
