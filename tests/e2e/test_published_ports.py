"""End to end, issue 29: `temps serve --publish-ports`, for a host where Traefik cannot reach
the containers' bridge. Each web container is published on 127.0.0.1 at a port Docker picks,
Traefik routes there, and a deploy under load drops nothing; a container that crashed comes
back at a new published port and is routed there once gated again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.checks import (
    assert_no_failures,
    container,
    push_ok,
    recorded_urls,
    route_servers,
    start_load,
    url_of,
)
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import docker
from tests.support.load import version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = ["--publish-ports"]


def bindings(name: str) -> list[dict[str, str]]:
    ports = json.loads(docker("inspect", name, timeout=30))[0]["NetworkSettings"]["Ports"]
    return [binding for found in ports.values() for binding in found or []]


def live_entry(daemon: TempsDaemon, app: str) -> dict[str, Any]:
    (entry,) = daemon.app(app)["live_release"]["slot"]["web"]
    return dict(entry)


def test_deploys_are_routed_to_ports_published_on_loopback_and_drop_nothing(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "p-deploys", tmp_path / "p-deploys"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    load = start_load(daemon, app)
    try:
        push_ok(daemon, repo, app, "v2")
        push_ok(daemon, repo, app, "v3")
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    assert summary.versions == ["v1", "v2", "v3"], summary.per_version

    live = daemon.app(app)["live_release"]
    published = bindings(container(app, 3))
    assert published and all(b["HostIp"] == "127.0.0.1" for b in published), published
    entry = live_entry(daemon, app)
    assert "address" not in entry and entry["host_port"] == int(published[0]["HostPort"]), entry
    assert route_servers(daemon, app) == recorded_urls(live) == [url_of(entry)]
    for number in (1, 2):
        drain = daemon.release(app, number)["traffic"]["drain"]
        assert drain["complete"], daemon.release(app, number)


def test_a_crashed_container_is_routed_at_its_new_published_port(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "p-crash"
    daemon.create_app(app)
    push_ok(daemon, tmp_path / app, app, "v1")
    name, was = container(app, 1), live_entry(daemon, app)
    # The app's process dies; Docker's restart policy starts the container again. The exec
    # dies with the container: its exit status says nothing.
    crash = ["docker", "exec", name, "sh", "-c", "kill -9 $(pidof httpd)"]
    subprocess.run(crash, capture_output=True, timeout=30, check=False)
    moved = poll(
        lambda: live_entry(daemon, app),
        lambda entry: (
            entry["host_port"] != was["host_port"] and route_servers(daemon, app) == [url_of(entry)]
        ),
        timeout=60,
    )
    assert moved["host_port"] != was["host_port"], f"{name} was not routed again: {moved}"
    assert [int(b["HostPort"]) for b in bindings(name)][:1] == [moved["host_port"]]
    assert version_of(daemon.get_app_page(app).text) == "v1"
