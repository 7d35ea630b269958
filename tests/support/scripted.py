"""An HTTP server on loopback that answers each request with the next status of a script (the
last one from then on) and records every request it was sent: an app's health endpoint, a
notification receiver that fails on purpose."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class ScriptedServer(ThreadingHTTPServer):
    """`with ScriptedServer([503, 200]) as server:` serves until the block ends.

    Made with `listening=False` its port is bound but refuses connections until `start()`:
    an app that has not begun to listen yet."""

    daemon_threads = True

    def __init__(self, statuses: list[int], listening: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Answer, bind_and_activate=False)
        self.server_bind()
        self.listening = listening
        if listening:
            self.server_activate()
        self.statuses = list(statuses)
        self.requests: list[Request] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    @property
    def bodies(self) -> list[bytes]:
        return [request.body for request in self.requests]

    def next_status(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def start(self) -> ScriptedServer:
        if not self.listening:
            self.server_activate()
            self.listening = True
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
        self.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Answer(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `ScriptedServer.requests`."""

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("content-length") or 0)))

    def _answer(self, body: bytes) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.requests.append(Request(self.command, self.path, headers, body))
        status = self.server.next_status()
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()
