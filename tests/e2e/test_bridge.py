"""End to end, issue 29: Traefik routes to each web container at its address on the home's
bridge, and nothing is published on the host.

Docker gives a container the lowest free address of its network each time it starts, so a
container started again after an older one left has a new address. The daemon of this
module is its own (a network of its own): v1 boots first and takes the bridge's first
address, v2 the next; once v1 is gone, v2 started again (by hand, or booted anew by the
supervisor after it was removed) takes v1's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.checks import (
    assert_no_failures,
    assert_only_containers,
    container,
    push_ok,
    route_servers,
    start_load,
    url_of,
)
from tests.support.daemon import TempsDaemon, home_id_of
from tests.support.dockercli import docker, on_bridge
from tests.support.load import version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker


def inspect(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(docker("inspect", name, timeout=30))[0]
    return found


def live_entry(daemon: TempsDaemon, app: str) -> dict[str, Any]:
    """The live release's one web container, as its record has it."""
    (entry,) = daemon.app(app)["live_release"]["slot"]["web"]
    return dict(entry)


def octets(address: str) -> tuple[int, ...]:
    return tuple(int(part) for part in address.split("."))


def moved_from(daemon: TempsDaemon, app: str, was: dict[str, Any]) -> dict[str, Any]:
    """The live container's record once it names an address other than `was`'s and Traefik
    routes there alone."""
    return poll(
        lambda: live_entry(daemon, app),
        lambda entry: (
            entry["address"] != was["address"] and route_servers(daemon, app) == [url_of(entry)]
        ),
        timeout=60,
    )


def test_a_container_publishes_nothing_and_traefik_routes_to_its_bridge_address(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "b-plain"
    daemon.create_app(app)
    push_ok(daemon, tmp_path / app, app, "v1")
    name = container(app, 1)
    info = inspect(name)
    assert list(info["NetworkSettings"]["Networks"]) == [f"temps-{home_id_of(daemon.home)}"]
    assert not info["HostConfig"]["PortBindings"], info["HostConfig"]["PortBindings"]
    assert not any(info["NetworkSettings"]["Ports"].values()), info["NetworkSettings"]["Ports"]
    assert info["Config"]["Labels"]["temps.port"] == "8000"

    entry = live_entry(daemon, app)
    address = on_bridge(name)[0]
    assert (entry["address"], entry["host_port"]) == (address, 8000), entry
    assert route_servers(daemon, app) == [f"http://{address}:8000"]
    with daemon.client() as api:
        shown = api.get(f"/api/apps/{app}/formation").json()["containers"]
    assert [(c["address"], c["host_port"]) for c in shown] == [(address, 8000)], shown
    assert version_of(daemon.get_app_page(app).text) == "v1"


def test_a_container_started_again_at_a_new_address_is_routed_and_drained_there(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "b-moved", tmp_path / "b-moved"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    first = on_bridge(container(app, 1))[0]
    push_ok(daemon, repo, app, "v2")
    assert_only_containers(app, [container(app, 2)])  # v1 drained, stopped and removed
    name, was = container(app, 2), live_entry(daemon, app)
    assert was["address"] == on_bridge(name)[0]
    assert octets(first) < octets(was["address"]), (first, was)

    # Stopped and started again by hand (the supervisor may start it first: the same story);
    # the lowest free address on the bridge is now v1's.
    docker("restart", "--time", "1", name, timeout=60, check=False)
    moved = moved_from(daemon, app, was)
    assert moved["address"] != was["address"], f"{name} was not routed at a new address: {moved}"
    assert moved["address"] == on_bridge(name)[0], moved
    assert moved["endpoint"] != was["endpoint"], (moved, was)
    log = "\n".join(daemon.release(app, 2)["log"])
    assert f"{name} restarted at {url_of(moved)}: gating it" in log, log
    assert version_of(daemon.get_app_page(app).text) == "v2"

    # The next deploy drains it where it is now: every request through Traefik answered.
    load = start_load(daemon, app)
    try:
        push_ok(daemon, repo, app, "v3")
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    assert "v2" in summary.versions and "v3" in summary.versions, summary.per_version
    drain = poll(
        lambda: (daemon.release(app, 2).get("traffic") or {}).get("drain"),
        lambda found: found is not None,
        timeout=60,
    )
    assert drain is not None and drain["complete"], daemon.release(app, 2)


def test_a_container_removed_outside_temps_is_started_again_and_routed_at_its_new_address(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """The restore path: nothing brings a removed container back but the supervisor, which
    boots it anew under its name; the bridge gives it the lowest free address, v1's."""
    daemon, app, repo = temps_daemon, "b-restored", tmp_path / "b-restored"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    push_ok(daemon, repo, app, "v2")
    assert_only_containers(app, [container(app, 2)])
    name, was = container(app, 2), live_entry(daemon, app)
    old_id = inspect(name)["Id"]

    docker("rm", "-f", name, timeout=60)
    moved = moved_from(daemon, app, was)
    assert inspect(name)["Id"] != old_id, "the same container, not one started again"
    assert moved["address"] == on_bridge(name)[0], moved
    log = "\n".join(daemon.release(app, 2)["log"])
    assert f"{name} was removed outside temps: started again" in log, log
    assert f"{name} restarted at {url_of(moved)}: gating it" in log, log
    with daemon.client() as api:
        shown = api.get(f"/api/apps/{app}/formation").json()["containers"]
    assert [(c["address"], c["state"]) for c in shown] == [(moved["address"], "running")], shown
    assert version_of(daemon.get_app_page(app).text) == "v2"
