"""An app being destroyed leaves Traefik (routes.forget, publish.withdraw): its service and
site go from the one table in one write, its own file first; against the real Traefik its
hosts answer 404 once confirmed, a request already in flight on it finishes, and the other
apps are served throughout."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.settings import Settings
from pipeline.traefik import publish
from pipeline.traefik.config import confirm_route
from pipeline.traefik.documents import Site, service_document
from pipeline.traefik.routes import (
    forget,
    publish_route,
    publish_site,
    route_path,
    site_of,
    table_path,
    tidy,
)
from tests.support.traefik import managed_traefik

SLOW_SECONDS = 2.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return settings


def routed(settings: Settings, *apps: str) -> None:
    for number, app in enumerate(apps):
        url = f"http://127.0.0.1:{18100 + number}"
        publish_route(settings, app, service_document(app, [url], "v1"))


def test_forget_takes_the_app_out_of_the_table_in_one_write(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tidy(settings, {})
    routed(settings, "doomed", "other")
    publish_site(settings, Site("doomed", ("doomed.localhost", "www.doomed.example")))
    writes: list[Path] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        writes.append(Path(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    forget(settings, "doomed")

    assert writes == [table_path(settings)]
    table = table_path(settings).read_text()
    assert "doomed" not in table and "other" in table
    assert not route_path(settings, "doomed").exists()
    assert site_of(settings, "doomed") == Site("doomed", ("doomed.localhost",))  # forgotten
    forget(settings, "doomed")  # again: nothing left to take out, the table stays as it is
    assert "other" in table_path(settings).read_text()


def test_the_route_file_goes_before_the_table_changes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon stopped in between must not find the route again at its next start."""
    tidy(settings, {})
    routed(settings, "doomed")
    seen: list[bool] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append(route_path(settings, "doomed").exists())
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    forget(settings, "doomed")
    assert seen == [False]


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        body = f"{self.server.server_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[list[str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Slow) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_real_traefik_drops_a_withdrawn_app_and_finishes_its_request_in_flight(
    tmp_path: Path, backends: list[str]
) -> None:
    doomed, other = backends
    with managed_traefik(tmp_path) as (settings, _):
        through = f"{settings.http.url}"
        publish_route(settings, "doomed", service_document("doomed", [doomed], "v1"))
        publish_route(settings, "other", service_document("other", [other], "v1"))
        site = Site("doomed", ("doomed.localhost", "www.doomed.example"))
        publish.rehost(settings, site)
        confirm_route(settings, "doomed", [doomed], "/", "v1")
        confirm_route(settings, "other", [other], "/", "v1")
        for host in site.hosts:
            assert httpx.get(through, headers={"Host": host}, timeout=5).status_code == 200

        in_flight: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: in_flight.append(
                httpx.get(f"{through}/slow", headers={"Host": "doomed.localhost"}, timeout=10)
            )
        )
        slow.start()
        time.sleep(SLOW_SECONDS / 4)  # on its way to the backend before the route goes

        publish.withdraw(settings, site)

        for host in site.hosts:
            assert httpx.get(through, headers={"Host": host}, timeout=5).status_code == 404
        kept = httpx.get(through, headers={"Host": "other.localhost"}, timeout=5)
        assert (kept.status_code, kept.text) == (200, other.rsplit(":", 1)[1])
        slow.join(SLOW_SECONDS + 10)
        assert [r.status_code for r in in_flight] == [200], "the request in flight was cut"
        publish.withdraw(settings, site)  # again: already gone, confirmed at once
