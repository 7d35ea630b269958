"""A stand-in for GitHub's and GitLab's commit status APIs on loopback: it records every POST
(path, headers, JSON body) and answers each with the next status of its script (the last one
from then on), 201 by default, as both APIs answer a status they keep."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Posted:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


class StatusAPI(ThreadingHTTPServer):
    """`with StatusAPI() as api:` serves at `api.url` until the block ends."""

    daemon_threads = True

    def __init__(self, statuses: list[int] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = list(statuses or [201])
        self._posted: list[Posted] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def posted(self) -> list[Posted]:
        with self._changed:
            return list(self._posted)

    def wait_for(self, done: Callable[[list[Posted]], bool], timeout: float) -> list[Posted]:
        """What was posted once `done` accepts it, or what was posted by `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self._posted) and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(min(left, 0.5))
            return list(self._posted)

    def record(self, posted: Posted) -> int:
        with self._changed:
            self._posted.append(posted)
            self._changed.notify_all()
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def __enter__(self) -> StatusAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)


class _Handler(BaseHTTPRequestHandler):
    server: StatusAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `StatusAPI.posted()`."""

    def do_POST(self) -> None:
        length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
        raw = self.rfile.read(length) if length else b"{}"
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = self.server.record(Posted(self.path, headers, json.loads(raw)))
        answer = b'{"message": "stand-in"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
