"""A client of an app's log tail (`GET /api/apps/<app>/logs?follow=true`), as a separate
`curl` process: its lines are read on a thread as they arrive, each parsed into who printed
it, and `close()` kills the process, so the daemon sees its client go the way a terminal's
Ctrl-C or a closed laptop does.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.support.daemon import TempsDaemon

# `2025-06-01T10:00:00.123456Z web.1 v2: text`
LINE = re.compile(rb"^(\S+Z) ([a-z][a-z0-9_-]*)\.(\d+) v(\d+): (.*)$", re.S)
NOTICE = re.compile(rb"^(\S+Z) temps: (.*)$", re.S)


@dataclass(frozen=True)
class Seen:
    """One line of the tail: who printed it and when, and when it arrived here."""

    at: str  # the engine's time, as the tail printed it (RFC 3339, UTC, microseconds)
    process: str
    instance: int
    release: int
    text: bytes
    arrived: float  # time.time() here

    @property
    def name(self) -> str:
        return f"{self.process}.{self.instance}"


def parse(raw: bytes, arrived: float = 0.0) -> Seen | None:
    found = LINE.match(raw)
    if found is None:
        return None
    at, process, instance, release, text = found.groups()
    return Seen(at.decode(), process.decode(), int(instance), int(release), text, arrived)


class LogTail:
    """`curl -N` on the app's logs, following; lines kept in arrival order."""

    def __init__(
        self, daemon: TempsDaemon, app: str, accept: str | None = None, **query: str
    ) -> None:
        params = urlencode({"follow": "true", **query})
        headers = ["-H", f"Authorization: Bearer {daemon.admin_token}"]
        if accept:
            headers += ["-H", f"Accept: {accept}"]
        url = f"{daemon.api_url}/api/apps/{app}/logs?{params}"
        self.command = ["curl", "-sS", "-N", "--no-buffer", *headers, url]
        self.raw: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> LogTail:
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in iter(self._process.stdout.readline, b""):
            with self._lock:
                self.raw.append((time.time(), raw.rstrip(b"\n")))

    def close(self) -> None:
        """The client goes: its connection closes without a word."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        if self._reader is not None:
            self._reader.join(10)

    def lines(self) -> list[Seen]:
        with self._lock:
            raw = list(self.raw)
        return [seen for at, line in raw if (seen := parse(line, at)) is not None]

    def texts(self) -> list[bytes]:
        with self._lock:
            return [line for _, line in self.raw]

    def notices(self) -> list[str]:
        return [
            found.group(2).decode("utf-8", "replace")
            for line in self.texts()
            if (found := NOTICE.match(line)) is not None
        ]

    def wait_for(self, done: Callable[[list[Seen]], bool], timeout: float) -> list[Seen]:
        """The lines once `done(lines)`, or as they are at `timeout`."""
        deadline = time.monotonic() + timeout
        seen = self.lines()
        while not done(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = self.lines()
        return seen
