"""End to end, issue 28 (desired state): what the records say runs is running.

A container of the live release stopped or removed outside temps (`docker kill`, `docker
stop`, `docker rm -f`) is started again, web ones gated and routed, whether the daemon was
running at the time or started afterwards; each is a line in the release's log and a
notification. `temps ps stop` is the one way to stop an app on purpose: its hosts answer 503
with `Retry-After`, nothing restarts it, and `temps ps start` brings it back; both hold across
a daemon restart.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import push_ok, route_servers, start_load, states, url_of
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import docker
from tests.support.sink import NotificationSink
from tests.support.wait import poll

pytestmark = pytest.mark.docker

PROCFILE = 'web: exec httpd -f -p "$PORT" -h /www\nworker: exec sleep 100000\n'
OUTSIDE = {
    "kill": ("kill",),
    "stop": ("stop", "--time", "2"),
    "rm": ("rm", "-f"),
}
WHY = {
    "kill": "was exited (exit code 137)",
    "stop": "was exited (exit code 143)",
    "rm": "was removed outside temps",
}
KILL_WINDOW = 1.0  # seconds after the command in which a request may still meet the dead one
BACK_TIMEOUT = 60.0  # generous for a loaded machine: the figure is in the closing note


def deploy(daemon: TempsDaemon, repo: Path, app: str, web: int, worker: int) -> None:
    daemon.create_app(app)
    with daemon.client() as api:
        scaled = api.patch(f"/api/apps/{app}/formation", json={"web": web})
    assert scaled.status_code == 200, scaled.text
    push_ok(daemon, repo, app, "v1", crash=True, procfile=PROCFILE)
    if worker != 1:
        with daemon.client() as api:
            scaled = api.patch(f"/api/apps/{app}/formation", json={"worker": worker}, timeout=120)
        assert scaled.status_code == 200, scaled.text


def formation(daemon: TempsDaemon, app: str) -> dict[str, Any]:
    with daemon.client() as api:
        answer = api.get(f"/api/apps/{app}/formation")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def names(daemon: TempsDaemon, app: str, process: str) -> list[str]:
    return [c["container"] for c in formation(daemon, app)["containers"] if c["process"] == process]


def container_id(name: str) -> str:
    return docker("inspect", "--format", "{{.Id}}", name, check=False).strip()


def routed_ports(daemon: TempsDaemon, app: str) -> set[str]:
    """The live slot's recorded addresses that Traefik routes to."""
    slot = daemon.app(app)["live_release"]["slot"]["web"]
    recorded = {url_of(entry) for entry in slot}
    return recorded & set(route_servers(daemon, app))


def whole(daemon: TempsDaemon, app: str, web: int, worker: int, replaced: dict[str, str]) -> bool:
    """Every container of the formation running (those in `replaced`, by name -> old id, as
    new containers), and every web one routed at its recorded address."""
    seen = formation(daemon, app)
    running = [c for c in seen["containers"] if c["state"] == "running"]
    counts = {p: c["running"] for p, c in (seen["processes"] or {}).items()}
    renewed = all(container_id(name) not in ("", old) for name, old in replaced.items())
    return (
        len(running) == web + worker
        and counts == {"web": web, "worker": worker}
        and renewed
        and len(routed_ports(daemon, app)) == web
    )


def log_of(daemon: TempsDaemon, app: str) -> str:
    return "\n".join(daemon.release(app, 1)["log"])


@pytest.mark.parametrize("how", list(OUTSIDE))
def test_a_live_container_stopped_outside_temps_is_started_again(
    temps_daemon: TempsDaemon, tmp_path: Path, how: str
) -> None:
    """With web=2 under load, a GET fails at most at the instant the container dies."""
    daemon, app = temps_daemon, f"keep-{how}"
    deploy(daemon, tmp_path / "repo", app, web=2, worker=1)
    web, worker = names(daemon, app, "web")[0], names(daemon, app, "worker")[0]
    replaced = {web: container_id(web), worker: container_id(worker)}
    with NotificationSink() as sink:
        with daemon.client() as api:
            assert api.put(f"/api/apps/{app}/notifications", json={"url": sink.url}).is_success
        load = start_load(daemon, app)
        try:
            time.sleep(1.0)
            began = load.elapsed()
            docker(*OUTSIDE[how], web)
            docker(*OUTSIDE[how], worker)
            ended = load.elapsed()
            poll(
                lambda: whole(daemon, app, 2, 1, replaced),
                bool,
                timeout=BACK_TIMEOUT,
                interval=0.5,
            )
            time.sleep(1.0)
        finally:
            summary = load.stop()
        told = [
            sink.wait_for(
                lambda item, name=name: (
                    item.json().get("event") == "container_restored"
                    and item.json().get("container") == name
                ),
                30,
            )
            for name in (web, worker)
        ]
    assert whole(daemon, app, 2, 1, replaced), f"not back within {BACK_TIMEOUT:g}s"
    log = log_of(daemon, app)
    for name in (web, worker):
        assert f"{name} {WHY[how]}: started again (try 1)" in log, log
    assert all(item is not None for item in told), "no container_restored notification"
    assert told[0] is not None and told[0].json()["process"] == "web"
    assert told[0].json()["reason"] == WHY[how]

    assert summary.total > 100, summary.line()
    late = [f for f in summary.failures if not began <= f.at < ended + KILL_WINDOW]
    assert late == [], f"requests failed after the instant of the {how}: {late}"
    assert daemon.get_app_page(app).status_code == 200


def test_what_was_stopped_while_the_daemon_was_down_runs_before_it_serves(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "keep-offline"
    deploy(daemon, tmp_path / "repo", app, web=3, worker=3)
    web, workers = names(daemon, app, "web"), names(daemon, app, "worker")
    replaced = {name: container_id(name) for name in web + workers}
    daemon.terminate()
    try:
        for how, one, other in zip(OUTSIDE, web, workers, strict=True):
            docker(*OUTSIDE[how], one)
            docker(*OUTSIDE[how], other)
    finally:
        daemon.restart()
    # The daemon answers once its first supervision ran: everything is back already.
    assert whole(daemon, app, 3, 3, replaced), formation(daemon, app)
    assert daemon.get_app_page(app).status_code == 200
    log = log_of(daemon, app)
    for how, one, other in zip(OUTSIDE, web, workers, strict=True):
        for name in (one, other):
            assert f"{name} {WHY[how]}: started again" in log, log


def ps(daemon: TempsDaemon, *words: str) -> str:
    done = subprocess.run(
        [str(TEMPS_BIN), "ps", *words],
        env=daemon.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def answer(daemon: TempsDaemon, app: str) -> httpx.Response:
    return daemon.get_app_page(app)


def assert_stopped(daemon: TempsDaemon, app: str) -> None:
    page = answer(daemon, app)
    assert page.status_code == 503 and page.headers.get("retry-after") == "30", (
        page.status_code,
        page.headers,
    )
    shown = formation(daemon, app)
    assert shown["stopped"] == ["web", "worker"], shown
    assert {c["state"] for c in shown["containers"]} == {"missing"}, shown["containers"]
    # What the supervisor last counted: within a check or two of the stop.
    counted = poll(
        # None until the supervisor's first count after a restart.
        lambda: (daemon.app(app)["processes"] or {}).get("web"),
        lambda c: c is not None and c["running"] == 0,
        timeout=30,
    )
    assert counted == {"wanted": 1, "running": 0, "stopped": True}


def test_ps_stop_holds_until_ps_start_across_restarts(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "keep-asked", tmp_path / "repo"
    deploy(daemon, repo, app, web=1, worker=1)
    assert answer(daemon, app).status_code == 200

    shown = ps(daemon, "stop", app)
    assert "running: web 0/1 (stopped) worker 0/1 (stopped)" in shown, shown
    assert_stopped(daemon, app)
    time.sleep(3.0)  # three supervisor checks: none starts anything
    assert_stopped(daemon, app)
    make_app_repo(repo, "v2", crash=True, procfile=PROCFILE)
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0 and f"{app} is stopped (temps ps stop)" in output, output
    assert [r["number"] for r in daemon.releases(app)] == [1], "a refused push left a release"

    daemon.terminate()
    daemon.restart()
    assert_stopped(daemon, app)

    shown = ps(daemon, "start", app)
    assert "running: web 1/1 worker 1/1" in shown, shown
    assert answer(daemon, app).status_code == 200
    daemon.terminate()
    daemon.restart()
    assert answer(daemon, app).status_code == 200
    assert daemon.app(app)["stopped"] == []
    log = log_of(daemon, app)
    assert "ps stop: stopping web, worker" in log and "ps start: starting web, worker" in log

    with daemon.client() as api:
        metrics = api.get("/metrics").text
    assert f'temps_app_containers_missing{{app="{app}"}} 0.0' in metrics, metrics
    assert f'temps_app_containers_running{{app="{app}",process="web"}} 1.0' in metrics


def test_a_stopped_worker_stays_stopped_across_a_deploy(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "keep-worker-off", tmp_path / "repo"
    deploy(daemon, repo, app, web=1, worker=1)
    ps(daemon, "stop", app, "worker")
    assert answer(daemon, app).status_code == 200, "stopping the worker stopped the web"
    push_ok(daemon, repo, app, "v2", crash=True, procfile=PROCFILE)
    time.sleep(2.0)
    shown = formation(daemon, app)
    assert shown["live_release"] == "v2" and shown["stopped"] == ["worker"], shown
    assert [c["process"] for c in shown["containers"]] == ["web"], shown["containers"]
    assert shown["processes"]["worker"] == {"wanted": 1, "running": 0, "stopped": True}
    ps(daemon, "start", app, "worker")
    workers = [c for c in formation(daemon, app)["containers"] if c["process"] == "worker"]
    assert [(w["state"], w["release"]) for w in workers] == [("running", "v2")], workers


def test_ps_stop_in_a_bake_window_ends_it_without_a_flip_back(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "keep-baking", tmp_path / "repo"
    deploy(daemon, repo, app, web=1, worker=1)
    push_ok(daemon, repo, app, "v2", crash=True, procfile=PROCFILE, bake=60)
    assert dict(states(daemon, app)) == {1: "standby", 2: "live"}
    ps(daemon, "stop", app)
    seen = poll(lambda: dict(states(daemon, app)), lambda s: s[1] == "retired", timeout=30)
    assert seen == {1: "retired", 2: "live"}, "a stop on purpose was taken for a crash"
    assert answer(daemon, app).status_code == 503
    ps(daemon, "start", app)
    assert answer(daemon, app).status_code == 200
    assert "v2 was stopped (temps ps stop): the window ends" in "\n".join(
        daemon.release(app, 2)["log"]
    )
