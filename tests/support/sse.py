"""An app that holds event streams, and clients that follow them through Traefik.

The app (`SERVER`) is a Python stdlib server: `/events` answers `text/event-stream` and sends
an event every second for as long as the client stays; `/` answers `version <vN>`; on
SIGUSR1 it tells every open stream `handover <TEMPS_HANDOVER_SECONDS>` and keeps it open (the
handover itself is temps' to do). Its image is made once per machine from the tests' Debian
Python image (tests/support/stackimages) and kept by the hash of its code; each release's
Dockerfile only sets the version on top of it, so a deploy builds nothing but metadata.

`Streams` runs the clients on an asyncio loop of its own, in a thread: raw sockets to
Traefik's HTTP port with the app's Host header, each one recording the release that answered
it, the events it got and when its stream ended, then reconnecting once to see where it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.apprepo import git
from tests.support.dockercli import image_exists
from tests.support.stackimages import IMAGES, ensure_stack_images

PYTHON_IMAGE = IMAGES["python"][0]

SERVER = r'''"""Event streams for temps' tests: /events, one event a second; / its version."""

import asyncio
import os
import signal
import socket

VERSION = os.environ.get("APP_VERSION", "v?")
HANDOVER = os.environ.get("TEMPS_HANDOVER_SECONDS", "")
streams = set()


def event(text):
    data = f"data: {text}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


async def follow(writer):
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + event(f"hello {VERSION}")
    )
    streams.add(writer)
    try:
        tick = 0
        while True:
            await writer.drain()
            await asyncio.sleep(1)
            tick += 1
            writer.write(event(f"tick {tick}"))
    finally:
        streams.discard(writer)


async def serve(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/events"):
                await follow(writer)
                return
            body = f"version {VERSION}\n".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        pass
    finally:
        writer.close()


def hand_over():
    for writer in list(streams):
        writer.write(event(f"handover {HANDOVER}"))


async def main():
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, hand_over)
    server = await asyncio.start_server(serve, "0.0.0.0", int(os.environ["PORT"]), backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
'''

BASE_DOCKERFILE = f"""FROM {PYTHON_IMAGE}
COPY server.py /app/server.py
CMD ["python3", "-u", "/app/server.py"]
"""


def ensure_sse_image() -> str:
    """The app's image, made now if this machine has none of this code yet; its tag."""
    ensure_stack_images({"python": IMAGES["python"]})
    digest = hashlib.sha256((BASE_DOCKERFILE + SERVER).encode()).hexdigest()[:12]
    tag = f"temps-test/sse-app:{digest}"
    if not image_exists(tag):
        with tempfile.TemporaryDirectory(prefix="temps-sse-") as made:
            scratch = Path(made)
            (scratch / "Dockerfile").write_text(BASE_DOCKERFILE)
            (scratch / "server.py").write_text(SERVER)
            subprocess.run(
                ["docker", "build", "-q", "-t", tag, str(scratch)],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
    return tag


def sse_toml(**deploy: object) -> str:
    """temps.toml of the app: a quick gate on `/`, and the [deploy] settings given."""
    lines = [
        "port = 8000",
        "",
        "[healthcheck]",
        'path = "/"',
        "interval = 0.2",
        "timeout = 1.0",
        "deadline = 30",
        "",
        "[deploy]",
        "stop_timeout = 5",
    ]
    for key, value in deploy.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def make_sse_repo(path: Path, image: str, version: str, toml: str) -> str:
    """Create (or update) the app's repository for `version` and commit it; the sha."""
    if not (path / ".git").exists():
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.name", "Temps Test")
        git(path, "config", "user.email", "test@temps.invalid")
    (path / "Dockerfile").write_text(f"FROM {image}\nENV APP_VERSION={version}\n")
    (path / "temps.toml").write_text(toml)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", version)
    return git(path, "rev-parse", "HEAD").strip()


@dataclass
class Stream:
    """One client's stream, as it saw it. Times are epoch seconds."""

    index: int
    release: str | None = None  # X-Temps-Release of the answer
    status: int | None = None
    connected_at: float | None = None
    events: list[str] = field(default_factory=list)
    ended_at: float | None = None
    clean: bool = False  # ended by the chunked body's last chunk, not cut
    reconnected_release: str | None = None  # where its one reconnect landed
    reconnected_status: int | None = None
    reconnected_at: float | None = None  # when that answer came
    error: str = ""

    @property
    def handover_events(self) -> list[str]:
        return [e for e in self.events if e.startswith("handover")]


class Refused(Exception):
    pass


class Streams:
    """Clients of `/events` through Traefik at `port` for `host`, on a loop of their own."""

    def __init__(self, port: int, host: str, path: str = "/events", reconnect: bool = True):
        self.port, self.host, self.path, self.reconnect = port, host, path, reconnect
        self.streams: list[Stream] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sse")
        self._tasks: list[asyncio.Future[None]] = []

    def __enter__(self) -> Streams:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for task in self._tasks:
            self._loop.call_soon_threadsafe(task.cancel)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.1), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def open(self, count: int, timeout: float = 60.0) -> list[Stream]:
        """`count` more streams, each answered with its first event; within `timeout`."""
        group = [Stream(len(self.streams) + i) for i in range(count)]
        self.streams += group
        started = threading.Event()

        async def launch() -> None:
            for number, stream in enumerate(group):
                self._tasks.append(asyncio.ensure_future(self._follow(stream)))
                if number % 20 == 19:
                    await asyncio.sleep(0.05)  # not one SYN burst past every backlog
            started.set()

        asyncio.run_coroutine_threadsafe(launch(), self._loop)
        started.wait(timeout)
        wait_for(lambda: all(s.events or s.ended_at for s in group), timeout, "streams answered")
        return group

    async def _follow(self, stream: Stream) -> None:
        try:
            reader, writer = await self._ask()
            try:
                stream.status, headers = await _head(reader)
                stream.release = headers.get("x-temps-release")
                stream.connected_at = time.time()
                if stream.status != 200:
                    raise Refused(f"HTTP {stream.status}")
                chunked = headers.get("transfer-encoding", "") == "chunked"
                buffer = b""
                async for data in _body(reader, chunked, stream):
                    buffer += data
                    while b"\n\n" in buffer:
                        one, buffer = buffer.split(b"\n\n", 1)
                        stream.events += [
                            line[6:].decode() for line in one.split(b"\n") if line[:6] == b"data: "
                        ]
            finally:
                writer.close()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.error = f"{type(exc).__name__}: {exc}"
        stream.ended_at = time.time()
        if self.reconnect:
            await self._land(stream)

    async def _land(self, stream: Stream) -> None:
        """Reconnect once, as an EventSource would, and note the release that answers."""
        try:
            reader, writer = await self._ask()
            try:
                stream.reconnected_status, headers = await _head(reader)
                stream.reconnected_release = headers.get("x-temps-release", "")
                stream.reconnected_at = time.time()
            finally:
                writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            stream.error += f"; reconnect: {type(exc).__name__}: {exc}"

    async def _ask(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        return reader, writer


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body(
    reader: asyncio.StreamReader, chunked: bool, stream: Stream
) -> AsyncIterator[bytes]:
    """The body's bytes as they come; `stream.clean` once it ended as HTTP says it should.
    A cut stream (the proxy's connection to the app ended) ends the iteration early."""
    try:
        if not chunked:
            while data := await reader.read(65536):
                yield data
            return
        while True:
            size_line = await reader.readline()
            if not size_line.endswith(b"\n"):
                return
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                stream.clean = True
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return


def wait_for(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)


def ended(streams: Iterable[Stream]) -> list[Stream]:
    return [s for s in streams if s.ended_at is not None]


def per_second(times: Iterable[float], origin: float) -> dict[int, int]:
    """How many of `times` fall in each whole second after `origin` (0 = the first second)."""
    counts: dict[int, int] = {}
    for at in times:
        second = math.floor(at - origin)
        counts[second] = counts.get(second, 0) + 1
    return dict(sorted(counts.items()))


def histogram(counts: dict[int, int]) -> str:
    return "\n".join(f"  {second:>4d} s  {n:>4d}  {'#' * n}" for second, n in counts.items())
