"""A container's (or a Swarm service's) output through the engine's log API, with the engine's
timestamps, as a stream that any thread may close.

The SDK's `logs` drops nothing we need but its `service_logs` cannot be closed from another
thread, and a follower blocked on a quiet container must end the moment its client leaves:
both go through the one request here, wrapped in the SDK's own `CancellableStream`, which
shuts the socket down under the blocked read.
"""

from __future__ import annotations

import calendar
import contextlib
import http.client
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import docker.errors
import docker.types
import requests
import urllib3.exceptions

from pipeline.docker.engine import engine_errors
from pipeline.errors import NotFound, RuntimeUnavailable
from pipeline.runtime import LogLine

FRAME_HEADER = struct.Struct(">BxxxL")  # stream (stdout 1, stderr 2), then the payload's size
# Docker splits a line longer than 16 KiB into parts; they are joined back up to this much,
# and a longer line comes out in pieces of this size.
MAX_LINE_BYTES = 1024 * 1024
READ_TIMEOUT = 300.0  # a read without `follow` ends when the engine has sent what it has


class OpenStreams:
    """How many log streams are open now, for /metrics and the tests that check none stays."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self, delta: int) -> None:
        with self._lock:
            self._count += delta

    @property
    def count(self) -> int:
        return self._count


OPEN = OpenStreams()
# How a read ends when its socket is shut down under it, or the engine drops it: http.client
# finds no socket (AttributeError) or a cut chunk (ValueError), urllib3 a protocol error.
BROKEN = (
    OSError,
    AttributeError,
    ValueError,
    http.client.HTTPException,
    urllib3.exceptions.HTTPError,
    requests.exceptions.RequestException,
)


class EngineLog:
    """The lines of one log request, oldest first; `close()` ends it from any thread."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._frames = docker.types.CancellableStream(self._read_frames(), response)
        self._closed = False
        self._lock = threading.Lock()
        OPEN.add(1)

    def __iter__(self) -> Iterator[LogLine]:
        try:
            yield from lines_of(self._frames)
        except BROKEN:
            # Closed under the read (the client left), or the engine went away: either way
            # the stream has ended, and the follower looks at the container again.
            return
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        OPEN.add(-1)
        # Already closed by the engine's end of the stream: nothing to shut down.
        with contextlib.suppress(OSError, AttributeError, docker.errors.DockerException):
            self._frames.close()
        self._response.close()

    def _read_frames(self) -> Iterator[bytes]:
        raw = self._response.raw
        while True:
            header = raw.read(FRAME_HEADER.size)
            if len(header) < FRAME_HEADER.size:
                return
            _stream, size = FRAME_HEADER.unpack(header)
            payload = raw.read(size) if size else b""
            if size and not payload:
                return
            yield payload


def open_log(
    api: Any, kind: str, ident: str, since: int | None, tail: int | None, follow: bool
) -> EngineLog:
    """GET /<kind>/<ident>/logs (kind: containers or services) with timestamps; NotFound when
    the engine has no such container or service."""
    params: dict[str, str | int] = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "follow": int(follow),
        "tail": "all" if tail is None else str(tail),
    }
    if since:
        # Seconds and nanoseconds as the engine parses them: a float would lose the last digits.
        params["since"] = f"{since // 10**9}.{since % 10**9:09d}"
    url = f"{api.base_url}/v{api.api_version}/{kind}/{quote(ident, safe='')}/logs"
    with engine_errors("read a container's log"):
        # A follower may wait on a quiet container for hours: no read timeout then.
        timeout = None if follow else READ_TIMEOUT
        response = api.get(url, params=params, stream=True, timeout=timeout)
    if response.status_code == 404:
        response.close()
        raise NotFound(f"no {kind[:-1]} {ident[:12]} on the engine")
    if response.status_code >= 400:
        message = _message(response)
        response.close()
        raise RuntimeUnavailable(f"the engine did not give the log of {ident[:12]}: {message}")
    return EngineLog(response)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.reason))
    except ValueError:
        return str(response.reason)


def lines_of(frames: Iterator[bytes]) -> Iterator[LogLine]:
    """Each frame is `<RFC 3339 time> <text>`: a whole line with its newline, or a part of a
    line longer than 16 KiB. The parts of a line share its time and are joined; the last one
    ends with the newline (json-file) or not (Docker 20.10's local driver drops it), so a part
    also ends when a frame of another time comes, or the stream ends."""
    pending: list[bytes] = []
    size = 0
    at = 0
    for frame in frames:
        stamp, _space, text = frame.partition(b" ")
        frame_at = stamp_ns(stamp) or at
        if pending and frame_at != at:
            yield LogLine(at, b"".join(pending))
            pending, size = [], 0
        at = frame_at
        whole = text.endswith(b"\n")
        part = text[:-1] if whole else text
        pending.append(part)
        size += len(part)
        if whole or size >= MAX_LINE_BYTES:
            yield LogLine(at, b"".join(pending))
            pending, size = [], 0
    if pending:
        yield LogLine(at, b"".join(pending))


def stamp_ns(stamp: bytes) -> int:
    """Docker's RFC 3339 UTC time with up to nine decimals (`2024-05-01T12:00:00.5Z`) as
    nanoseconds since the epoch; 0 when it is not one. By hand: `strptime` is slow, and not
    safe on its first call from several threads at once."""
    text = stamp.decode("ascii", "replace")
    head, _dot, fraction = text.removesuffix("Z").partition(".")
    shape = head[4:5] + head[7:8] + head[10:11] + head[13:14] + head[16:17]
    if len(head) != 19 or shape != "--T::" or (fraction and not fraction.isdigit()):
        return 0
    try:
        fields = (head[0:4], head[5:7], head[8:10], head[11:13], head[14:16], head[17:19])
        year, month, day, hour, minute, second = (int(f) for f in fields)
    except ValueError:
        return 0
    nanoseconds = int(fraction[:9].ljust(9, "0"))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 10**9 + nanoseconds
