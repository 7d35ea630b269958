"""End to end, issue 18 (formation): several web containers per release, deployed blue-green,
scaled without a release, and a killed one routed around, all under steady load through
the real Traefik.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.checks import (
    assert_no_failures,
    deploys_and_a_rollback,
    push_ok,
    recorded_urls,
    route_servers,
    start_load,
    url_of,
)
from tests.support.daemon import MANY_FAILURES, TEMPS_BIN, TempsDaemon
from tests.support.dockercli import docker
from tests.support.liveapp import app_containers, deploy_v1
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = MANY_FAILURES  # it pushes often: see MANY_FAILURES
DEPLOYS = 10
KILL_WINDOW = 1.0  # seconds after the kill in which a request may still meet the dead one
MAX_CAUGHT_BY_THE_KILL = 4  # over the two events


def formation(daemon: TempsDaemon, app: str, web: int | None = None) -> httpx.Response:
    with daemon.client() as api:
        if web is None:
            return api.get(f"/api/apps/{app}/formation")
        return api.patch(f"/api/apps/{app}/formation", json={"web": web}, timeout=120)


def live_containers(daemon: TempsDaemon, app: str) -> list[str]:
    return [c["container"] for c in formation(daemon, app).json()["containers"]]


def settled_containers(app: str, count: int) -> list[str]:
    """Docker's own list of the app's containers, once retirements have left `count`."""
    return poll(lambda: app_containers(app), lambda names: len(names) == count, timeout=30)


def test_deploys_of_three_web_containers_and_a_rollback_drop_nothing(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "trio", tmp_path / "repo"
    daemon.create_app(app)
    assert formation(daemon, app, 3).status_code == 200  # nothing live yet: the next release
    push_ok(daemon, repo, app, "v1")
    assert len(route_servers(daemon, app)) == 3
    summary = deploys_and_a_rollback(daemon, repo, app, DEPLOYS)
    assert_no_failures(summary)
    live = daemon.app(app)["live_release"]
    assert live["formation"] == {"web": 3} and len(live["slot"]["web"]) == 3
    assert sorted(route_servers(daemon, app)) == recorded_urls(live)
    assert sorted(settled_containers(app, 3)) == sorted(live_containers(daemon, app))


def test_scaling_up_and_down_twice_drops_nothing_and_makes_no_release(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "scaler"
    deploy_v1(daemon, tmp_path / "repo", app)
    load = start_load(daemon, app)
    try:
        for _round in range(2):
            for count in (3, 1):
                answer = formation(daemon, app, count)
                assert answer.status_code == 200, answer.text
                assert len(answer.json()["containers"]) == count
                assert len(route_servers(daemon, app)) == count
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    assert [r["number"] for r in daemon.releases(app)] == [1], "scaling made a release"
    assert settled_containers(app, 1) == live_containers(daemon, app)

    scaled = subprocess.run(
        [str(TEMPS_BIN), "ps", "scale", app, "web=2"], env=daemon.cli_env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert scaled.returncode == 0, scaled.stderr
    lines = scaled.stdout.splitlines()
    assert lines[0] == "formation: web=2 (live: v1) running: web 2/2"
    assert len(lines) == 3 and all(" v1 " in line and "up " in line for line in lines[1:])


def test_a_killed_or_crashed_web_container_is_routed_around_and_back(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """A GET that reaches a container as it dies may get a 502 (the container took the
    connection, then it was reset with the request sent: Traefik retries no such request), or
    rarely its connection closed with no answer; these are counted and reported. From then on
    Traefik's health check and retry keep every request on the others. A container
    that crashed comes back by its restart policy (a new start, at its address on the bridge
    or a new one), and is routed again once it passes the gate; one stopped by `docker kill`
    is started again by the supervisor (Docker does not restart what was killed by hand),
    gated and routed the same way."""
    daemon, app = temps_daemon, "sturdy"
    daemon.create_app(app)
    formation(daemon, app, 3)
    push_ok(daemon, tmp_path / "repo", app, "v1")
    _first, killed, crashed = live_containers(daemon, app)
    crashed_was, killed_was = live_entry(daemon, app, crashed), live_entry(daemon, app, killed)
    load = start_load(daemon, app)
    try:
        time.sleep(1.0)
        events = [(load.elapsed(), 0.0)]
        docker("kill", killed)
        events[0] = (events[0][0], load.elapsed())
        time.sleep(2.0)
        # The shell dies with the container it crashes: its exit status says nothing.
        crash = ["docker", "exec", crashed, "sh", "-c", "kill -9 $(pidof httpd)"]
        before = load.elapsed()
        subprocess.run(crash, capture_output=True, timeout=30, check=False)
        events.append((before, load.elapsed()))
        back = poll(
            lambda: {c["container"]: c for c in formation(daemon, app).json()["containers"]},
            lambda seen: seen[crashed]["restarts"] >= 1 and seen[crashed]["state"] == "running",
            timeout=30,
        )
        # Each came back as a new start (a new endpoint on the bridge, perhaps at the same
        # address): recorded and routed once it passed the gate.
        came_back = poll(
            lambda: live_entry(daemon, app, crashed),
            lambda found: (
                found["endpoint"] != crashed_was["endpoint"]
                and url_of(found) in route_servers(daemon, app)
            ),
            timeout=30,
        )
        again = poll(
            lambda: live_entry(daemon, app, killed),
            lambda found: (
                found["endpoint"] != killed_was["endpoint"]
                and url_of(found) in route_servers(daemon, app)
            ),
            timeout=30,
        )
        time.sleep(1.0)
    finally:
        summary = load.stop()
    assert back[crashed]["restarts"] >= 1, back
    servers = route_servers(daemon, app)
    assert len(servers) == 3 and {url_of(came_back), url_of(again)} <= set(servers), servers
    log = "\n".join(daemon.release(app, 1)["log"])
    assert f"{killed} was exited (exit code 137): started again (try 1)" in log, log
    for name, entry in ((crashed, came_back), (killed, again)):
        assert f"{name} restarted at {url_of(entry)}: gating it" in log, log
    assert summary.total > 500, summary.line()
    # Each event lasts from the command's start to its end, plus the window after it.
    near = [f for f in summary.failures if any(a <= f.at < b + KILL_WINDOW for a, b in events)]
    assert near == summary.failures, f"failures away from the kill and the crash: {near}"
    assert all(f.status in (502, None) for f in near), summary.failures
    assert len(near) <= MAX_CAUGHT_BY_THE_KILL, (
        f"{len(near)} requests met a container as it died ({summary.non_2xx} 502, "
        f"{summary.errors} closed without an answer): {summary.line()}"
    )


def live_entry(daemon: TempsDaemon, app: str, container: str) -> dict[str, Any]:
    """The container's entry in the live release's record: where it is routed, which start."""
    for entry in daemon.app(app)["live_release"]["slot"]["web"]:
        if entry["container"] == container:
            return dict(entry)
    raise AssertionError(f"{container} is not in the live slot")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"web": 0}, 400, "web runs 1 to 20 containers, got 0"),
        ({"web": 21}, 400, "web runs 1 to 20 containers, got 21"),
        ({"worker": -1}, 400, "worker runs 0 to 20 containers, got -1"),
        ({"Bad Name": 1}, 400, "invalid process type 'Bad Name'"),
        ({"web": "3"}, 422, "web"),
    ],
)
def test_a_bad_formation_is_refused(
    temps_daemon: TempsDaemon, body: dict[str, Any], status: int, reason: str
) -> None:
    daemon, app = temps_daemon, "trio-bad"
    if app not in daemon.apps:
        daemon.create_app(app)
    with daemon.client() as api:
        answer = api.patch(f"/api/apps/{app}/formation", json=body)
    assert answer.status_code == status and reason in answer.text, answer.text
    assert formation(daemon, app).json()["formation"] == {"web": 1}
