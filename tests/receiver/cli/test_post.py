"""`temps run`'s one plain request (receiver.cli.attach.ask), against a real HTTP server that
stands where a reverse proxy in front of the daemon would: an answer in 3xx is reported with
its status, as httpx's client does, never followed to a GET of another URL."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from receiver.cli.attach import ask
from receiver.cli.target import Target


class Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the status its path ends with, and a problem document."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"detail": "moved to https"}).encode()
        self.send_response(int(self.path.rsplit("/", 1)[-1]))
        self.send_header("Location", "https://elsewhere.invalid/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    serving = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=serving.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{serving.server_address[1]}"
    serving.shutdown()
    serving.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_reported_not_followed(
    server: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        ask(Target(server, "token"), f"/api/apps/myapp/runs/{status}", {"command": ["true"]}, 125)
    assert exited.value.code == 125
    assert capsys.readouterr().err == f"temps: {status}: moved to https\n"


def test_no_daemon_listening_is_said_in_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ask(Target("http://127.0.0.1:1", "token"), "/api/apps/myapp/runs", {}, 125)
    assert exited.value.code == 125
    assert capsys.readouterr().err.startswith(
        "temps: cannot reach the daemon at http://127.0.0.1:1"
    )


def test_the_answer_is_the_json_the_daemon_sent(server: str) -> None:
    assert ask(Target(server, "token"), "/api/apps/myapp/runs/200", {}, 125) == {
        "detail": "moved to https"
    }
