"""The managed Traefik as the real process it starts: its garbage collector settings, its own
metrics only when asked for, and its access log written as requests are answered."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from pipeline.settings import Settings
from tests.support.traefik import managed_traefik
from tests.support.wait import poll


class Started(NamedTuple):
    environment: dict[str, str]  # as the kernel holds it
    metrics: httpx.Response  # GET /metrics at its API address


def started(home: Path, **fields: object) -> Started:
    """Start the real Traefik for a fresh home; what it was started with."""
    with managed_traefik(home, **fields) as (settings, proxy):
        assert proxy.ready()
        pid = int(settings.traefik_pid_file.read_text())
        pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        metrics = httpx.get(f"{settings.traefik_api.url}/metrics", timeout=5.0)
    return Started(dict(pair.decode().partition("=")[::2] for pair in pairs if pair), metrics)


def test_traefik_starts_with_the_collector_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    defaults = started(tmp_path / "defaults").environment
    assert (defaults["GOGC"], defaults["GOMEMLIMIT"]) == (
        Settings.model_fields["traefik_gogc"].default,
        Settings.model_fields["traefik_memory_limit"].default,
    )
    chosen = started(
        tmp_path / "chosen", traefik_gogc="300", traefik_memory_limit="64MiB"
    ).environment
    assert (chosen["GOGC"], chosen["GOMEMLIMIT"]) == ("300", "64MiB")


def test_the_operators_own_gogc_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGC", "150")
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    environment = started(tmp_path).environment
    assert environment["GOGC"] == "150"
    assert environment["GOMEMLIMIT"] == Settings.model_fields["traefik_memory_limit"].default


def test_traefiks_own_metrics_are_served_only_when_asked_for(tmp_path: Path) -> None:
    assert started(tmp_path / "default").metrics.status_code == 404
    asked = started(tmp_path / "asked", traefik_metrics=True).metrics
    assert asked.status_code == 200
    assert "traefik_config_reloads_total" in asked.text


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def route(settings: Settings, host: str, url: str) -> None:
    """One router for `host` to `url`, in a file of the watched directory."""
    document = {
        "http": {
            "routers": {"hello": {"rule": f"Host(`{host}`)", "service": "hello"}},
            "services": {"hello": {"loadBalancer": {"servers": [{"url": url}]}}},
        }
    }
    (settings.dynamic_dir / "hello.yml").write_text(json.dumps(document))


def logged(settings: Settings) -> list[dict[str, Any]]:
    if not settings.access_log.exists():
        return []
    return [json.loads(line) for line in settings.access_log.read_text().splitlines()]


def test_each_request_is_in_the_access_log_as_it_is_answered_and_none_lost_at_a_stop(
    tmp_path: Path,
) -> None:
    """The access log is buffered (a writer of its own takes the lines), yet a line is in the
    file soon after its answer, not once the buffer fills; a burst stopped at once is all
    written before Traefik exits."""
    host = "hello.test"
    with backend() as url, managed_traefik(tmp_path) as (settings, proxy):
        assert proxy.ready()
        route(settings, host, url)
        web = f"http://{settings.http}/"
        with httpx.Client(headers={"Host": host}, timeout=5.0) as client:
            status = poll(lambda: client.get(web).status_code, lambda s: s == 200, timeout=20.0)
            assert status == 200
            for _ in range(3):
                before = len(logged(settings))
                assert client.get(web).status_code == 200
                # far fewer lines than the buffer holds: each must be written on its own
                count = poll(lambda: len(logged(settings)), lambda n, b=before: n > b, timeout=20.0)
                assert count == before + 1
            before = len(logged(settings))
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: client.get(web).status_code, range(200)))
            assert answers == [200] * 200
        proxy.stop()
        lines = logged(settings)[before:]
    assert len(lines) == 200
    assert {line["DownstreamStatus"] for line in lines} == {200}
    assert {line["RequestHost"] for line in lines} == {host}
