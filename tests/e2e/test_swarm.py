"""End to end, issues 20 and 28: `temps serve --runtime swarm` on a real Swarm of five engines
(the host engine as manager, four dockerd in network namespaces of their own as workers) with
a real registry, under steady load through the real Traefik.

The module's tests share one cluster and one daemon, in order: the first ones run on every
node; then each node-loss test takes one more worker away for good (the lost node in a
release's steady state, then in its bake window, twice), so the last one runs on two workers
and the manager.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import DEFAULT_SETTINGS, git_push, make_app_repo
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
from tests.support.load import LoadGenerator
from tests.support.logtail import LogTail, parse
from tests.support.registry import build_site
from tests.support.swarm import SwarmCluster, swarm_cluster
from tests.support.swarm.loss import (
    live_slot,
    lose_a_node_under_load,
    node_down_at,
    requests_sent,
)
from tests.support.wait import poll

pytestmark = pytest.mark.docker

DEPLOYS = 5
# GETs that may meet a task at the instant its node vanishes: the connection Traefik had
# opened to it hangs until its timeout or the health check takes the server out first.
MAX_CAUGHT_BY_THE_LOSS = 10
# Workers: one for each node-loss test, and two left for the last one's formation to spread on.
WORKERS = 4
ON_WORKERS = {"swarm": {"constraints": ["node.role==worker"]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmCluster]:
    with swarm_cluster(workers=WORKERS, tmp=tmp_path_factory.mktemp("swarm")) as made:
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


# A task's first answer may wait for its node to pull the image from the registry and the
# overlay to route to it: on a loaded 2-core machine running four engines, longer than the
# usual 20 s gate.
SWARM_GATE = {"healthcheck": {"deadline": 120}}


def web_formation(daemon: TempsDaemon, app: str, web: int) -> None:
    """A new app whose first release will run `web` web containers, gated generously."""
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.patch(f"/api/apps/{app}/formation", json={"web": web}).status_code == 200
        gate = api.patch(f"/api/apps/{app}", json={"settings": SWARM_GATE})
        assert gate.status_code == 200, gate.text


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

    env = daemon.cli_env()
    shown = subprocess.run([str(TEMPS_BIN), "nodes"], env=env, capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for node in cluster.nodes:
        assert node.address in shown.stdout and "ready" in shown.stdout, shown.stdout


def test_the_logs_of_tasks_on_the_workers_come_through_the_manager(
    swarm_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = swarm_daemon, "chatty"
    web_formation(daemon, app, 2)
    hello = 'echo "hello from $(hostname)"; exec httpd -f -p "$PORT" -h /www'
    push_ok(daemon, tmp_path / "repo", app, "v1", cmd=hello, settings=ON_WORKERS)
    with daemon.client() as api:
        shown = api.get(f"/api/apps/{app}/logs").content
    said = {line.name: line.text for line in map(parse, shown.splitlines()) if line}
    assert set(said) == {"web.1", "web.2"}, shown
    assert all(text.startswith(b"hello from ") for text in said.values()), said
    with LogTail(daemon, app) as tail:
        seen = tail.wait_for(lambda seen: len(seen) >= 2, timeout=60)
    assert {line.name for line in seen} == {"web.1", "web.2"}, tail.texts()


def test_a_one_off_run_runs_on_the_managers_engine(
    swarm_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """As the release phase does: the image is the manager's own, and nothing is routed."""
    daemon, app = swarm_daemon, "oneoff"
    daemon.create_app(app)
    push_ok(daemon, tmp_path / "repo", app, "v1", settings=ON_WORKERS)
    env = daemon.cli_env()
    done = subprocess.run(
        [str(TEMPS_BIN), "run", app, "--", "sh", "-c", "echo on $PORT; exit 5"],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (5, b"on 8000\n"), done.stderr
    with daemon.client() as api:
        (run,) = api.get(f"/api/apps/{app}/runs").json()
    assert run["state"] == "exited" and run["exit_code"] == 5, run
    # The exit code is answered before the container is removed: gone shortly after.
    left = poll(
        lambda: docker("ps", "-a", "-q", "--filter", f"name={run['container']}"),
        lambda found: not found.strip(),
        timeout=30,
    )
    assert not left.strip(), f"{run['container']} left on the manager's engine"


def test_an_image_deploy_runs_by_digest_on_the_nodes_as_a_built_image_does(
    swarm_daemon: TempsDaemon, cluster: SwarmCluster
) -> None:
    """Pulled on the manager, tagged as the app's own, pushed to the Swarm's registry."""
    daemon, app = swarm_daemon, "pulled"
    web_formation(daemon, app, 2)
    built = build_site("temps-test/site:v201", "v201")
    pushed = cluster.push_image(built, "site", "v201")
    docker("image", "rm", built, f"{cluster.registry}/site:v201")
    settings = {**DEFAULT_SETTINGS, **ON_WORKERS}
    image = f"{cluster.registry}/site:v201"
    with daemon.client() as api:
        api.patch(f"/api/apps/{app}", json={"settings": settings}).raise_for_status()
        answer = api.post(f"/api/apps/{app}/deploy?wait=true", json={"image": image}, timeout=600)
    assert answer.status_code == 200 and answer.json()["state"] == "live", answer.text
    assert answer.json()["pulled"] == f"{image}@{pushed.partition('@')[2]}"
    slot = live_slot(daemon, app)
    assert len(slot) == 2, slot
    for entry in slot:
        ran = docker("service", "inspect", entry["container"], "--format",
                     "{{.Spec.TaskTemplate.ContainerSpec.Image}}")  # fmt: skip
        assert ran.startswith(f"{cluster.registry}/temps/{app}@sha256:"), ran
        body = httpx.get(f"http://{entry['address']}:{entry['host_port']}/", timeout=10).text
        assert "version v201" in body, body


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
    push_ok(daemon, repo, app, "v1", settings=ON_WORKERS)
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


# --- a node lost in a bake window ---------------------------------------------------------------


def test_a_worker_lost_in_the_bake_window_is_not_held_against_a_healthy_release(
    swarm_daemon: TempsDaemon, cluster: SwarmCluster, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "steady", tmp_path / "repo"
    bake = 45.0
    web_formation(daemon, app, 3)
    push_ok(daemon, repo, app, "v1", settings=ON_WORKERS)
    push_ok(daemon, repo, app, "v2", bake=bake, settings=ON_WORKERS)
    wait_states(daemon, app, [(2, "live"), (1, "standby")])
    before = live_slot(daemon, app)

    loss = lose_a_node_under_load(daemon, cluster, app)
    lost = loss.lost.address
    gone = [e["container"] for e in before if e["address"] == lost]
    after = {e["container"]: e for e in loss.after}
    assert gone and not any(e["address"] == lost for e in after.values()), loss.after

    # The window runs to its end: v2 stays live and v1 retires, with no flip back.
    wait_states(daemon, app, [(2, "live"), (1, "retired")], timeout=bake + 90)
    lines = [str(line) for line in daemon.release(app, 2)["log"]]
    log = "\n".join(lines)
    assert "switched back" not in log and "bake window over: v2 stays live" in log, log
    for name in gone:
        # Judged again where Swarm started it, once it answered: the lost node was not held
        # against it (the log says so too when a probe fell between the loss and the restart).
        url = f"http://{after[name]['address']}:{after[name]['host_port']}"
        assert f"bake: {name} runs again at {url} (rescheduled off a lost node)" in log, log
        assert f"bake: {name} at {url}: health /health: HTTP 200" in log, log
    assert sorted(route_servers(daemon, app)) == sorted(
        f"http://{e['address']}:{e['host_port']}" for e in live_slot(daemon, app)
    )
    assert not any(lost in server for server in route_servers(daemon, app))
    assert loss.load.non_2xx + loss.load.errors <= MAX_CAUGHT_BY_THE_LOSS, loss.load.line()


def break_health(cluster: SwarmCluster, entry: dict[str, Any]) -> None:
    """The task's health file goes, on whichever node it runs: its health check answers 404."""
    node = next(n for n in cluster.nodes if n.address == entry["address"])
    host = ["-H", node.base_url]
    tasks = docker(*host, "ps", "-q", "--filter",
                   f"label=com.docker.swarm.service.name={entry['container']}")  # fmt: skip
    assert tasks.split(), f"no task of {entry['container']} on {node.name}"
    for task in tasks.split():
        docker(*host, "exec", task, "rm", "-f", "/www/health", timeout=30)


def address_of(url: str) -> str:
    return url.split("//", 1)[-1].rsplit(":", 1)[0]


def flipped_to(daemon: TempsDaemon, app: str) -> list[str]:
    """The servers the daemon's flip back routed the app to, from its own log."""
    for line in daemon.log_path.read_text(errors="replace").splitlines():
        if '"bake.flipped_back"' in line:
            event = json.loads(line)
            if event.get("app") == app:
                return [str(server) for server in event["servers"]]
    return []


def test_a_release_gone_bad_after_a_node_loss_flips_back_only_to_standby_tasks_on_live_nodes(
    swarm_daemon: TempsDaemon, cluster: SwarmCluster, tmp_path: Path
) -> None:
    daemon, app, repo = swarm_daemon, "rebound", tmp_path / "repo"
    web_formation(daemon, app, 3)
    push_ok(daemon, repo, app, "v1", settings=ON_WORKERS)
    push_ok(daemon, repo, app, "v2", bake=300, settings=ON_WORKERS)
    wait_states(daemon, app, [(2, "live"), (1, "standby")])
    standby = {e["container"]: e for e in daemon.release(app, 1)["slot"]["web"]}
    baking = live_slot(daemon, app)
    # A worker that runs tasks of both releases (three each on two workers: Swarm spreads
    # them, though not always the same way).
    both = {e["address"] for e in standby.values()} & {e["address"] for e in baking}
    victims = [w for w in cluster.workers if w.address in both]
    assert victims, (standby, baking)
    victim = victims[0]

    load = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", workers=30, max_seconds=300)
    load.start()
    try:
        time.sleep(1.0)
        cluster.kill_node(victim.name)
        down_at = node_down_at(daemon, victim.address)

        # v2 serves on: its task on the lost node is started again elsewhere and routed.
        def rerouted(servers: list[str]) -> bool:
            return len(servers) == 3 and not any(victim.address in s for s in servers)

        routed = poll(lambda: route_servers(daemon, app), rerouted, timeout=120, interval=0.2)
        assert rerouted(routed), routed
        # Then v2 goes bad, still inside its bake window: one of its tasks answers 404 (one
        # replica failing fails the release; Traefik's own check takes it out meanwhile).
        break_health(cluster, live_slot(daemon, app)[0])
        wait_states(daemon, app, [(2, "failed"), (1, "live")], timeout=90)
        time.sleep(2.0)  # the load goes on over the standby's tasks
    finally:
        summary = load.stop()

    bad = daemon.release(app, 2)
    assert bad["failed_step"] == "bake" and "404" in bad["failure_reason"], bad
    flipped = flipped_to(daemon, app)
    up = {n["address"] for n in nodes(daemon) if n["state"] == "ready"}
    assert flipped and {address_of(server) for server in flipped} <= up, (flipped, up)
    servers = route_servers(daemon, app)
    assert servers and victim.address not in {address_of(server) for server in servers}, servers
    # Only the standby's containers serve: some perhaps at a new address (Swarm started the
    # one on the lost node again elsewhere before the flip).
    assert {e["container"] for e in live_slot(daemon, app)} == set(standby)
    assert daemon.get_app_page(app).headers.get("X-Temps-Release") == "v1"

    # Traefik's own record: no request went to the lost node once it was marked down. A
    # request sent there first and retried elsewhere is logged with the server it ended on
    # and its retries: none either.
    sent = requests_sent(daemon.home / "traefik" / "access.log", down_at)
    to_lost = [one for one in sent if address_of(one.server) == victim.address]
    assert sent and not to_lost, to_lost[:5]
    assert not [one for one in sent if one.retries], [one for one in sent if one.retries][:5]
    assert summary.non_2xx + summary.errors <= MAX_CAUGHT_BY_THE_LOSS, summary.line()
