"""End to end, destroying an app (`temps apps destroy`, `DELETE /api/apps/<app>`): the real
daemon, dockerd, Traefik and git.

What a user checks: the requests in flight on the app finish, another app under load sees
nothing, and afterwards nothing of the app is left, whether asked through the Docker engine,
the API or the home's files (its named volume stays unless asked). A wrong confirmation, an
unknown app or a deploy token changes nothing; a deploy running or queued is cancelled and a
push meanwhile refused; a daemon killed half-way finishes at its next start; and an app made
again under the name starts clean.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import (
    assert_no_failures,
    assert_only_containers,
    container,
    push_ok,
    rejection,
    start_load,
)
from tests.support.credentials import admin, bearer, make_token
from tests.support.daemon import MANY_FAILURES, TEMPS_BIN, TempsDaemon, home_id_of
from tests.support.dockercli import app_images, container_names, docker, lines
from tests.support.inflight import InFlight, assert_all_answered
from tests.support.load import version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = MANY_FAILURES
DESTROY_TIMEOUT = 300.0
SETTLE_TIMEOUT = 60.0
# A build step long enough to catch the deploy in it, and to queue another behind it.
SLOW_BUILD = ["RUN sleep 8"]


# --- asking everything that could still hold something of the app --------------------------


def destroy(
    daemon: TempsDaemon,
    app: str,
    confirm: str | None,
    *,
    volumes: bool = False,
    token: str | None = None,
) -> httpx.Response:
    params = {"volumes": "true"} if volumes else {}
    if confirm is not None:
        params["confirm"] = confirm
    return httpx.delete(
        f"{daemon.api_url}/api/apps/{app}",
        params=params,
        headers=bearer(token or daemon.admin_token),
        timeout=DESTROY_TIMEOUT,
    )


def volumes_of(daemon: TempsDaemon, app: str) -> list[str]:
    home = daemon.home.resolve()
    return sorted(
        lines(
            docker(
                "volume", "ls", "-q",
                "--filter", f"label=temps.app={app}", "--filter", f"label=temps.home={home}",
            )
        )
    )  # fmt: skip


def attached(daemon: TempsDaemon, app: str) -> list[str]:
    """The app's containers attached to the home's bridge, as the engine sees it."""
    network = f"temps-{home_id_of(daemon.home)}"
    found = docker("network", "inspect", network, "--format", "{{json .Containers}}", check=False)
    members = (json.loads(found) if found.strip() else None) or {}
    names = (member["Name"] for member in members.values())
    return sorted(name for name in names if name.startswith(f"temps-{app}-"))


def routed(daemon: TempsDaemon, app: str) -> list[str]:
    """The app's routers, middlewares and services in the route table Traefik reads."""
    text = (daemon.home / "traefik" / "dynamic" / "routes.yml").read_text()
    http = (json.loads(text) if text.strip() else {}).get("http", {})
    return sorted(
        name for part in http.values() for name in part if name == app or name.startswith(f"{app}-")
    )


def records(daemon: TempsDaemon, app: str) -> dict[str, int]:
    """Rows naming the app, read past the daemon."""
    with sqlite3.connect(daemon.home / "temps.db", timeout=30) as db:
        apps = db.execute("SELECT count(*) FROM apps WHERE name = ?", (app,)).fetchone()[0]
        tokens = db.execute("SELECT count(*) FROM tokens WHERE app = ?", (app,)).fetchone()[0]
        releases = db.execute(
            "SELECT count(*) FROM releases JOIN apps ON apps.id = releases.app_id "
            "WHERE apps.name = ?",
            (app,),
        ).fetchone()[0]
    return {"apps": apps, "releases": releases, "tokens": tokens}


def leftovers(daemon: TempsDaemon, app: str) -> dict[str, object]:
    """Whatever of the app Docker, Traefik, the API and the home still hold."""
    home, home_id = daemon.home.resolve(), home_id_of(daemon.home)
    return {
        "containers": container_names(f"label=temps.app={app}", f"label=temps.home={home}"),
        "images": [ref for ref in app_images(app) if ref.endswith(f"-{home_id}")],
        "networks": lines(docker("network", "ls", "-q", "--filter", f"label=temps.app={app}")),
        "attached": attached(daemon, app),
        "routes": routed(daemon, app),
        "route file": (home / "traefik" / "routes" / f"{app}.json").exists(),
        "repository": (home / "repos" / f"{app}.git").exists(),
        "records": records(daemon, app),
        "api": admin(daemon, "GET", f"/api/apps/{app}").status_code,
        "host": daemon.get_app_page(app).status_code,
    }


NOTHING: dict[str, object] = {
    "containers": [],
    "images": [],
    "networks": [],
    "attached": [],
    "routes": [],
    "route file": False,
    "repository": False,
    "records": {"apps": 0, "releases": 0, "tokens": 0},
    "api": 404,
    "host": 404,
}


def assert_nothing_left(daemon: TempsDaemon, app: str, timeout: float = 0.0) -> None:
    found = poll(lambda: leftovers(daemon, app), lambda seen: seen == NOTHING, timeout=timeout)
    assert found == NOTHING, f"left of {app}: {found}"


def in_background(call: Callable[[], Any]) -> Future[Any]:
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call)
    finally:
        pool.shutdown(wait=False)


def newest(daemon: TempsDaemon, app: str) -> tuple[int, str]:
    release = daemon.releases(app)[0]
    return release["number"], release["state"]


# --- tests -----------------------------------------------------------------------------------


def test_destroy_lets_requests_in_flight_finish_and_leaves_nothing_while_another_app_serves(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, other = temps_daemon, "doomed", "bystander"
    daemon.create_app(app)
    daemon.create_app(other)
    mounted = admin(daemon, "POST", f"/api/apps/{app}/storage", json={"name": "data", "path": "/d"})
    assert mounted.status_code == 201, mounted.text
    volume = mounted.json()["volume"]
    domain = admin(daemon, "POST", f"/api/apps/{app}/domains", json={"host": "www.doomed.example"})
    assert domain.status_code == 201, domain.text
    _, token = make_token(daemon, "doomed-ci", app)
    assert admin(daemon, "POST", f"/api/apps/{app}/webhook-secret").status_code == 200
    push_ok(daemon, tmp_path / app, app, "v1")
    push_ok(daemon, tmp_path / app, app, "v2")
    push_ok(daemon, tmp_path / other, other, "v1")
    assert_only_containers(app, [container(app, 2)])
    assert volumes_of(daemon, app) == [volume]

    load = start_load(daemon, other)
    try:
        time.sleep(0.5)
        in_flight = InFlight.start(daemon, app, "v2", count=2)
        time.sleep(1.0)  # at the app's container, its CGI sleeping, before the route goes
        answer = destroy(daemon, app, confirm=app)
        time.sleep(0.5)
    finally:
        summary = load.stop()

    assert answer.status_code == 200, answer.text
    assert_all_answered([in_flight])
    assert_no_failures(summary)
    assert summary.versions == ["v1"], summary.line()
    removed, kept = answer.json()["removed"], answer.json()["kept"]
    assert removed["containers"] == [container(app, 2)]
    assert len(removed["images"]) == 2 and removed["releases"] == 2
    assert (removed["domains"], removed["tokens"], removed["repository"]) == (
        ["www.doomed.example"],
        ["doomed-ci"],
        True,
    )
    assert (removed["volumes"], kept["volumes"]) == ([], [volume])

    assert_nothing_left(daemon, app)
    custom = httpx.get(daemon.http_url, headers={"Host": "www.doomed.example"}, timeout=10)
    assert custom.status_code == 404
    assert volumes_of(daemon, app) == [volume], "the volume went without ?volumes=true"
    whoami = httpx.get(f"{daemon.api_url}/api/whoami", headers=bearer(token), timeout=10)
    assert whoami.status_code == 401, "the app's deploy token outlived it"
    assert version_of(daemon.get_app_page(other).text) == "v1"


def test_a_deploy_running_or_queued_is_cancelled_and_changes_are_refused_meanwhile(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "closing", tmp_path / "closing"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    make_app_repo(repo, "v2", dockerfile_extra=SLOW_BUILD)
    running = in_background(lambda: git_push(repo, daemon.git_url(app)))
    assert poll(lambda: newest(daemon, app), lambda r: r == (2, "building"), timeout=60) == (
        2,
        "building",
    )
    make_app_repo(repo, "v3", dockerfile_extra=SLOW_BUILD)
    queued = in_background(lambda: git_push(repo, daemon.git_url(app)))
    assert poll(lambda: newest(daemon, app), lambda r: r == (3, "queued"), timeout=60) == (
        3,
        "queued",
    )

    destroying = in_background(lambda: destroy(daemon, app, confirm=app))
    view = poll(
        lambda: admin(daemon, "GET", f"/api/apps/{app}").json(),
        lambda seen: seen.get("destroying") is True,
        timeout=10,
    )
    assert view.get("destroying") is True, view
    make_app_repo(repo, "v4")
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0 and "is being destroyed" in output, output
    refusals = {
        "deploy": admin(daemon, "POST", f"/api/apps/{app}/deploy", json={}),
        "scale": admin(daemon, "PATCH", f"/api/apps/{app}/formation", json={"web": 2}),
        "config": admin(daemon, "PATCH", f"/api/apps/{app}/config", json={"env": {"A": "1"}}),
        "token": admin(
            daemon, "POST", "/api/tokens", json={"name": "late", "scope": "deploy", "app": app}
        ),
    }
    for what, refused in refusals.items():
        assert refused.status_code == 409, f"{what}: {refused.status_code} {refused.text}"
        assert "is being destroyed" in refused.json()["detail"], f"{what}: {refused.text}"

    answer = destroying.result(timeout=DESTROY_TIMEOUT)
    assert answer.status_code == 200, answer.text
    for push in (running, queued):
        code, output = push.result(timeout=DESTROY_TIMEOUT)
        assert code != 0, output
        assert rejection(output) == f"cancelled: app '{app}' is being destroyed", output
    assert_nothing_left(daemon, app)


def test_a_wrong_confirmation_an_unknown_app_or_a_deploy_token_changes_nothing(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "keeper"
    daemon.create_app(app)
    push_ok(daemon, tmp_path / app, app, "v1")
    _, token = make_token(daemon, "keeper-ci", app)
    before = (daemon.releases(app), leftovers(daemon, app), volumes_of(daemon, app))

    refusals = [
        (destroy(daemon, app, confirm=None), 400, f"confirm with ?confirm={app}"),
        (destroy(daemon, app, confirm="keep"), 400, f"'keep' does not name '{app}'"),
        (destroy(daemon, "ghost", confirm="ghost"), 404, "no app named 'ghost'"),
        (destroy(daemon, app, confirm=app, token=token), 403, "is not an admin token"),
    ]
    for answer, status, words in refusals:
        assert answer.status_code == status and words in answer.json()["detail"], answer.text
    env = daemon.cli_env()
    for args, words in [
        ([], f"--confirm {app}"),
        (["--confirm", "keep"], f"'keep' does not name '{app}'"),
    ]:
        done = subprocess.run(
            [str(TEMPS_BIN), "apps", "destroy", app, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and words in done.stderr, done

    assert (daemon.releases(app), leftovers(daemon, app), volumes_of(daemon, app)) == before
    assert daemon.app(app)["destroying"] is False
    assert version_of(daemon.get_app_page(app).text) == "v1"


def test_a_daemon_killed_mid_destroy_finishes_it_at_its_next_start(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "halfway"
    daemon.create_app(app)
    push_ok(daemon, tmp_path / app, app, "v1")
    in_flight = InFlight.start(daemon, app, "v1", count=1)
    time.sleep(1.0)
    answered: list[httpx.Response | Exception] = []

    def ask() -> None:
        try:
            answered.append(destroy(daemon, app, confirm=app))
        except httpx.HTTPError as exc:
            answered.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    # Out of Traefik: the destroy now drains the request in flight.
    assert poll(lambda: daemon.get_app_page(app).status_code, lambda s: s == 404, timeout=10) == 404
    assert container_names(f"label=temps.app={app}", include_stopped=False) == [container(app, 1)]
    daemon.kill()
    asking.join(30)
    assert answered and isinstance(answered[0], httpx.HTTPError), answered
    assert records(daemon, app)["apps"] == 1, "the app went before its containers"
    with sqlite3.connect(daemon.home / "temps.db") as db:
        mark = db.execute("SELECT destroying_at FROM apps WHERE name = ?", (app,)).fetchone()
    assert mark is not None and mark[0] is not None, "the destroy was not recorded first"

    daemon.restart()
    assert_nothing_left(daemon, app, timeout=SETTLE_TIMEOUT)
    assert_all_answered([in_flight])


def test_an_app_made_again_under_the_name_starts_clean_and_deploys(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "phoenix", tmp_path / "phoenix"
    daemon.create_app(app)
    mounted = admin(daemon, "POST", f"/api/apps/{app}/storage", json={"name": "data", "path": "/d"})
    assert mounted.status_code == 201, mounted.text
    push_ok(daemon, repo, app, "v1")
    push_ok(daemon, repo, app, "v2")
    env = daemon.cli_env()
    done = subprocess.run(
        [str(TEMPS_BIN), "apps", "destroy", app, "--confirm", app, "--volumes"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DESTROY_TIMEOUT,
    )
    assert done.returncode == 0, done
    assert done.stdout.startswith(f"{app} destroyed: 1 container, 2 images, 2 releases"), done
    assert "1 volume" in done.stdout and "kept volume" not in done.stdout, done.stdout
    assert_nothing_left(daemon, app)
    assert volumes_of(daemon, app) == []

    daemon.create_app(app)
    assert daemon.releases(app) == []
    assert admin(daemon, "GET", f"/api/apps/{app}/storage").json() == []
    assert admin(daemon, "GET", f"/api/apps/{app}/domains").json()["domains"] == []
    push_ok(daemon, repo, app, "v3")
    assert [(r["number"], r["state"]) for r in daemon.releases(app)] == [(1, "live")]
    page = daemon.get_app_page(app)
    assert (page.status_code, version_of(page.text)) == (200, "v3")
    assert page.headers.get("x-temps-release") == "v1"
