"""End to end, issue 20: `temps serve --runtime swarm` on a real Swarm of three engines (the
host engine as manager, two dockerd in network namespaces of their own as workers) with a
real registry, under steady load through the real Traefik.

The module's tests share one cluster and one daemon, in order: the node-loss test takes a
worker away, and the daemon-crash test runs on the two nodes left.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import (
    assert_no_failures,
    deploys_and_a_rollback,
    push_ok,
    route_servers,
    start_load,
    state_path,
    wait_states,
)
from tests.support.daemon import TEMPS_BIN, TempsDaemon, running_daemon
from tests.support.dockercli import docker
from tests.support.swarm import SwarmCluster, swarm_cluster
from tests.support.swarm.loss import live_slot, lose_a_node_under_load
from tests.support.wait import poll

pytestmark = pytest.mark.docker

DEPLOYS = 5
# GETs that may meet a task at the instant its node vanishes: the connection Traefik had
# opened to it hangs until its timeout or the health check takes the server out first.
MAX_CAUGHT_BY_THE_LOSS = 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmCluster]:
    with swarm_cluster(workers=2, tmp=tmp_path_factory.mktemp("swarm")) as made:
        yield made


@pytest.fixture(scope="module")
def swarm_daemon(
    busybox_image: str, cluster: SwarmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TempsDaemon]:
    home = tmp_path_factory.mktemp("home-swarm")
    args = ["--runtime", "swarm", "--registry", cluster.registry, "--auth-failures", "100000"]
    with running_daemon(home, "test-e2e-swarm", args) as daemon:
        yield daemon


def services(daemon: TempsDaemon, app: str) -> list[str]:
    """The Swarm services of the app on the daemon's home, by name."""
    out = docker("service", "ls", "--filter", f"label=temps.home={daemon.home.resolve()}",
                 "--filter", f"label=temps.app={app}", "--format", "{{.Name}}")  # fmt: skip
    return sorted(line for line in out.splitlines() if line.strip())


def settled_services(daemon: TempsDaemon, app: str) -> list[str]:
    """Once retirements are over: the home's services, which must be the live slot's."""
    wanted = sorted(entry["container"] for entry in live_slot(daemon, app))
    return poll(lambda: services(daemon, app), lambda found: found == wanted, timeout=90)


def web_formation(daemon: TempsDaemon, app: str, web: int) -> None:
    """A new app whose first release will run `web` web containers."""
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.patch(f"/api/apps/{app}/formation", json={"web": web}).status_code == 200


def nodes(daemon: TempsDaemon) -> list[dict[str, Any]]:
    with daemon.client() as api:
        answer = api.get("/api/nodes")
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_a_push_deploys_three_tasks_over_the_nodes_and_deploys_and_a_rollback_drop_nothing(
    swarm_daemon: TempsDaemon, cluster: SwarmCluster, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "fleet", tmp_path / "repo"
    web_formation(daemon, app, 3)
    push_ok(daemon, repo, app, "v1")

    slot = live_slot(daemon, app)
    addresses = {entry["address"] for entry in slot}
    assert len(slot) == 3 and len(addresses) >= 2, f"not spread over two nodes: {slot}"
    assert addresses <= {node.address for node in cluster.nodes}, slot
    servers = sorted(f"http://{e['address']}:{e['host_port']}" for e in slot)
    assert sorted(route_servers(daemon, app)) == servers
    image = docker("service", "inspect", slot[0]["container"], "--format",
                   "{{.Spec.TaskTemplate.ContainerSpec.Image}}")  # fmt: skip
    assert image.startswith(f"{cluster.registry}/temps/{app}@sha256:"), image
    listed = {node["address"]: node["containers"] for node in nodes(daemon)}
    assert sum(len(names) for names in listed.values()) == 3, listed
    assert len([names for names in listed.values() if names]) >= 2, listed

    summary = deploys_and_a_rollback(daemon, repo, app, DEPLOYS)
    assert_no_failures(summary)
    assert daemon.app(app)["live_release"]["number"] == DEPLOYS + 2
    assert settled_services(daemon, app)

    env = {**os.environ, "TEMPS_TOKEN": daemon.admin_token, "TEMPS_URL": daemon.api_url}
    shown = subprocess.run([str(TEMPS_BIN), "nodes"], env=env, capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for node in cluster.nodes:
        assert node.address in shown.stdout and "ready" in shown.stdout, shown.stdout


def test_a_rollback_inside_the_bake_window_is_a_route_flip_to_the_standby_services(
    swarm_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "flipper", tmp_path / "repo"
    web_formation(daemon, app, 2)
    push_ok(daemon, repo, app, "v1", bake=60)
    standby = sorted(e["container"] for e in live_slot(daemon, app))
    push_ok(daemon, repo, app, "v2", bake=60)
    assert sorted(services(daemon, app)) == sorted([*standby, *live_containers(daemon, app)])
    load = start_load(daemon, app)
    try:
        with daemon.client() as api:
            rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=120)
        time.sleep(1.0)
    finally:
        summary = load.stop()
    assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
    assert_no_failures(summary)
    # The standby's own services serve again: nothing was booted.
    assert sorted(e["container"] for e in live_slot(daemon, app)) == standby
    assert daemon.get_app_page(app).headers.get("X-Temps-Release") == "v3"
    assert state_path(daemon.release(app, 3)) == ["queued", "switching", "live"]


def live_containers(daemon: TempsDaemon, app: str) -> list[str]:
    return sorted(e["container"] for e in live_slot(daemon, app))


def test_the_daemon_killed_mid_deploy_leaves_one_live_release_and_no_orphan_service(
    swarm_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "phoenix", tmp_path / "repo"
    web_formation(daemon, app, 2)
    push_ok(daemon, repo, app, "v1")
    make_app_repo(repo, "v2", settings={"healthcheck": {"grace_period": 4}})
    pushing = threading.Thread(target=git_push, args=(repo, daemon.git_url(app)), daemon=True)
    pushing.start()
    wait_states(daemon, app, [(2, "health_checking")], timeout=120)
    daemon.kill()
    pushing.join(timeout=30)
    daemon.restart()

    live = [r for r in daemon.releases(app) if r["state"] == "live"]
    assert [r["number"] for r in live] == [1], daemon.releases(app)
    assert settled_services(daemon, app) == sorted(e["container"] for e in live_slot(daemon, app))
    assert daemon.get_app_page(app).status_code == 200


def test_a_lost_node_is_routed_around_and_its_tasks_come_back_gated(
    swarm_daemon: TempsDaemon, cluster: SwarmCluster, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "hardy", tmp_path / "repo"
    web_formation(daemon, app, 3)
    # On the workers only: one of them surely runs a task to lose, the other takes it over.
    push_ok(daemon, repo, app, "v1", settings={"swarm": {"constraints": ["node.role==worker"]}})
    before = live_slot(daemon, app)
    workers = {w.address for w in cluster.workers}
    assert {e["address"] for e in before} <= workers, f"placed off the workers: {before}"
    loss = lose_a_node_under_load(daemon, cluster, app)
    after, summary = loss.after, loss.load
    assert len(after) == 3 and loss.lost.address not in {e["address"] for e in after}, (
        f"{loss.back_in:.1f} s after the kill: {after}"
    )
    assert sorted(route_servers(daemon, app)) == sorted(
        f"http://{e['address']}:{e['host_port']}" for e in after
    )
    log = "\n".join(daemon.release(app, 1)["log"])
    assert "gating it" in log, log
    failed = summary.non_2xx + summary.errors
    assert failed <= MAX_CAUGHT_BY_THE_LOSS, summary.line()
    assert httpx.get(f"{daemon.http_url}/", headers={"Host": f"{app}.{daemon.domain}"},
                     timeout=10).status_code == 200  # fmt: skip
