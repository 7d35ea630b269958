"""The client's side of a one-off run: the POST that asks for it, then its WebSocket
(receiver.api.relay's protocol), opened with the same token, the command's output written
here as it comes, what the user types or pipes in and the terminal's size sent along, until
its status arrives.

h11 speaks HTTP/1.1 for the ask and wsproto (which is built on h11) the WebSocket protocol
(the handshake, frames, masking, pings and the close); this module moves their bytes over a
plain socket. They are imported here and nowhere else in the CLI, once a run is asked for: a
run imports neither httpx, nor a full WebSocket client, nor the standard library's HTTP
client and the e-mail parsing it brings (BENCHMARKS.md, "One-off runs")."""

from __future__ import annotations

import contextlib
import json
import os
import socket as sockets
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from receiver.cli import terminal
from receiver.cli.client import API_TIMEOUT, detail_of, fail
from receiver.cli.target import Target

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4  # receiver.api.relay's channels
PROTOCOL = "temps.run.v1"
OPEN_TIMEOUT = 60.0  # the attach's handshake: the container is started before it is answered
STDIN_CHUNK = 64 * 1024
READ_CHUNK = 64 * 1024
MAX_REFUSAL = 64 * 1024  # what is read of a refusal's body


class NotAttached(Exception):
    """The daemon refused the attach, or could not be reached: why, in a line."""


class Closed(Exception):
    """The connection ended: closed by the daemon, or cut."""


class Attached:
    """An open WebSocket: whole binary messages in, binary messages out. Sends come from
    the stdin and resize threads while the main thread receives: wsproto's state is used
    under one lock, and no socket call is made under it but the sends."""

    def __init__(self, sock: sockets.socket, protocol: WSConnection) -> None:
        self.sock, self.protocol = sock, protocol
        self.lock = threading.Lock()
        # Events read with the handshake's answer (a quick command's first output can come
        # in the same segment): the first messages.
        self.backlog: list[Event] = []

    def send(self, message: bytes) -> None:
        with self.lock:
            try:
                data = self.protocol.send(BytesMessage(message))
            except LocalProtocolError as exc:  # closed meanwhile
                raise Closed(str(exc)) from exc
            self.sock.sendall(data)

    def messages(self) -> Iterator[bytes]:
        """Each message as it is whole, until the connection ends."""
        parts: list[bytes] = []
        while True:
            for event in self.events():
                if isinstance(event, BytesMessage):
                    parts.append(bytes(event.data))
                    if event.message_finished:
                        yield b"".join(parts)
                        parts = []
                elif isinstance(event, Ping):
                    self._reply(event.response())
                elif isinstance(event, CloseConnection):
                    self._reply(event.response())
                    return

    def events(self) -> list[Event]:
        if self.backlog:
            events, self.backlog = self.backlog, []
            return events
        try:
            data = self.sock.recv(READ_CHUNK)
        except OSError as exc:
            raise Closed(str(exc)) from exc
        with self.lock:
            try:
                self.protocol.receive_data(data or None)
                events = list(self.protocol.events())
            except RemoteProtocolError as exc:
                # The end of the stream in the middle of an answer: the daemon went away.
                raise Closed("the daemon closed the connection" if not data else str(exc)) from exc
        if not data and not events:
            raise Closed("the daemon closed the connection")
        return events

    def _reply(self, event: Event) -> None:
        with self.lock, contextlib.suppress(LocalProtocolError, OSError):
            self.sock.sendall(self.protocol.send(event))

    def close(self) -> None:
        self._reply(CloseConnection(code=1000))
        with contextlib.suppress(OSError):
            self.sock.close()


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
def attach(target: Target, path: str) -> Iterator[Attached]:
    """The run's WebSocket, opened with the same token; NotAttached when it is refused."""
    url = target.url.rstrip("/") + path
    try:
        sock = _connected(url, target.ca_file)
    except OSError as exc:
        raise NotAttached(f"cannot attach to the run at {url}: {exc}") from exc
    try:
        socket = _opened(sock, url, target.token)
    except BaseException:
        sock.close()
        raise
    try:
        yield socket
    finally:
        socket.close()


def ask(target: Target, path: str, body: object, exit_code: int) -> Any:
    """POST `body` as JSON to `path` and return the JSON answered; a refusal or no answer
    ends the command with `exit_code`, saying why. A redirect is an answer too: its status,
    not its target."""
    url = target.url.rstrip("/") + path
    parts = urlsplit(url)
    data = json.dumps(body).encode()
    headers = [
        ("Host", parts.netloc),
        ("Authorization", f"Bearer {target.token}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Connection", "close"),
    ]
    protocol = h11.Connection(h11.CLIENT)
    target_path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        sock = _connected(url, target.ca_file, API_TIMEOUT)
        with contextlib.closing(sock):
            request = h11.Request(method="POST", target=target_path, headers=headers)
            sock.sendall(protocol.send(request) + protocol.send(h11.Data(data=data)))
            sock.sendall(protocol.send(h11.EndOfMessage()))
            status, answer = _answer(sock, protocol)
    except (OSError, h11.ProtocolError) as exc:
        fail(f"temps: cannot reach the daemon at {target.url}: {exc}", exit_code)
    if status >= 300:
        fail(f"temps: {status}: {detail_of(answer)}", exit_code)
    return json.loads(answer) if answer else None


def _answer(sock: sockets.socket, protocol: h11.Connection) -> tuple[int, bytes]:
    """The response's status and whole body."""
    status, body = 0, bytearray()
    while True:
        event = protocol.next_event()
        if event is h11.NEED_DATA:
            protocol.receive_data(sock.recv(READ_CHUNK))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, bytes(body)


def _connected(url: str, ca_file: str | None, timeout: float = OPEN_TIMEOUT) -> sockets.socket:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    sock = sockets.create_connection((parts.hostname or "127.0.0.1", port), timeout)
    sock.setsockopt(sockets.IPPROTO_TCP, sockets.TCP_NODELAY, 1)
    if not secure:
        return sock
    import ssl  # only for a daemon behind HTTPS

    context = ssl.create_default_context(cafile=ca_file)
    return context.wrap_socket(sock, server_hostname=parts.hostname)


def _opened(sock: sockets.socket, url: str, token: str) -> Attached:
    """The handshake, within OPEN_TIMEOUT; then reads wait as long as the run lasts."""
    parts = urlsplit(url)
    protocol = WSConnection(ConnectionType.CLIENT)
    request = Request(
        host=parts.netloc,
        target=parts.path + (f"?{parts.query}" if parts.query else ""),
        extra_headers=[(b"authorization", f"Bearer {token}".encode())],
        subprotocols=[PROTOCOL],
    )
    socket = Attached(sock, protocol)
    try:
        sock.sendall(protocol.send(request))
        refused: RejectConnection | None = None
        body = b""
        while True:
            events = socket.events()
            for at, event in enumerate(events):
                if isinstance(event, AcceptConnection):
                    sock.settimeout(None)
                    socket.backlog = events[at + 1 :]
                    return socket
                if isinstance(event, RejectConnection):
                    refused = event
                    if not event.has_body:
                        raise NotAttached(f"{event.status_code}: the attach was refused")
                elif isinstance(event, RejectData) and refused is not None:
                    body = (body + bytes(event.data))[:MAX_REFUSAL]
                    if event.body_finished:
                        raise NotAttached(f"{refused.status_code}: {detail_of(body)}")
    except Closed as exc:
        # The daemon starts the container before it accepts: the run may have begun.
        raise NotAttached(
            f"the connection to the daemon was lost while attaching to the run at {url}: {exc}"
        ) from exc
    except (OSError, LocalProtocolError) as exc:
        raise NotAttached(f"cannot attach to the run at {url}: {exc}") from exc


def relay(socket: Attached) -> dict[str, Any] | None:
    """Write the command's output as it comes; its status once it ends (None: cut off)."""
    try:
        for message in socket.messages():
            if not message:
                continue
            channel, payload = message[0], message[1:]
            if channel == STATUS:
                status: dict[str, Any] = json.loads(payload)
                return status
            out = sys.stdout if channel == STDOUT else sys.stderr if channel == STDERR else None
            if out is not None:
                out.buffer.write(payload)
                out.buffer.flush()
    except Closed:
        return None
    return None


def send_stdin(socket: Attached, fd: int, tty: bool) -> None:
    """What the user types or pipes in, as it comes; its end, without a terminal."""
    with contextlib.suppress(Closed, OSError):
        while data := os.read(fd, STDIN_CHUNK):
            socket.send(bytes((STDIN,)) + data)
        if not tty:
            socket.send(bytes((STDIN,)))


def send_size(socket: Attached, size: tuple[int, int]) -> None:
    cols, rows = size
    with contextlib.suppress(Closed, OSError):
        socket.send(bytes((RESIZE,)) + json.dumps({"cols": cols, "rows": rows}).encode())
