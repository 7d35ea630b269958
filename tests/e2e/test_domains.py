"""End to end, issue 17: custom domains, served through the real Traefik without a deploy.

An app is served at `<app>.<domain>` and at every domain added to it. Adding or removing one
moves only the app's routers: the hosts already served keep answering under steady load,
no release is made, and a host belongs to one app at a time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.checks import assert_no_failures, push_ok
from tests.support.credentials import make_token
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.liveapp import deploy_v1
from tests.support.load import LoadGenerator, version_of

pytestmark = pytest.mark.docker

CHANGES = 6


def domains(daemon: TempsDaemon, app: str, method: str = "GET", **body: Any) -> httpx.Response:
    path = f"/api/apps/{app}/domains"
    if method == "DELETE":
        path += f"/{body.pop('host')}"
    with daemon.client() as api:
        return api.request(method, path, json=body or None)


def through(daemon: TempsDaemon, host: str) -> tuple[int, str | None, str | None]:
    """(status, version in the body, X-Temps-Release) of one request for `host`."""
    response = httpx.get(f"{daemon.http_url}/", headers={"Host": host}, timeout=10)
    return response.status_code, version_of(response.text), response.headers.get("x-temps-release")


def test_domains_come_and_go_without_a_deploy_or_a_dropped_request(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "dom"
    deploy_v1(daemon, tmp_path / "repo", app)
    added = domains(daemon, app, "POST", host="www.dom.test")
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["app"], body["default"], body["domains"]) == (
        app,
        f"{app}.localhost",
        ["www.dom.test"],
    )
    assert body["https"] is False
    assert body["hosts"] == [
        {"host": f"{app}.localhost", "certificate": None},
        {"host": "www.dom.test", "certificate": None},
    ]
    assert through(daemon, "www.dom.test") == (200, "v1", "v1")

    default = LoadGenerator(daemon.http_url, f"{app}.localhost", rate=100, max_seconds=120)
    kept = LoadGenerator(daemon.http_url, "www.dom.test", rate=100, max_seconds=120)
    with default, kept:
        for number in range(CHANGES):
            host = f"shop{number}.dom.test"
            answer = domains(daemon, app, "POST", host=host.upper() + ".")
            assert answer.status_code == 201, answer.text
            # Confirmed in Traefik before the answer: served at once.
            assert through(daemon, host) == (200, "v1", "v1")
            assert domains(daemon, app, "DELETE", host=host).status_code == 200
            assert through(daemon, host)[0] == 404
    for load in (default.summary(), kept.summary()):
        assert_no_failures(load)
    assert [r["number"] for r in daemon.releases(app)] == [1], "a domain change made a release"
    listed = domains(daemon, app).json()
    assert listed["domains"] == ["www.dom.test"]
    assert daemon.app(app)["domains"] == ["www.dom.test"]


def test_a_deploy_keeps_the_domains_and_counts_their_traffic(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "dom-deploy"
    repo = tmp_path / "repo"
    deploy_v1(daemon, repo, app)
    assert domains(daemon, app, "POST", host="deploy.dom.test").status_code == 201
    with LoadGenerator(daemon.http_url, "deploy.dom.test", rate=100, max_seconds=120) as load:
        push_ok(daemon, repo, app, "v2")
    assert_no_failures(load.summary())
    assert through(daemon, "deploy.dom.test") == (200, "v2", "v2")
    assert through(daemon, f"{app}.localhost") == (200, "v2", "v2")
    traffic = daemon.release(app, 2)["traffic"]
    assert traffic["requests"] > 0, f"the custom domain's requests were not counted: {traffic}"


def test_a_host_has_one_owner(temps_daemon: TempsDaemon) -> None:
    daemon = temps_daemon
    daemon.create_app("owner")
    daemon.create_app("claimer")
    assert domains(daemon, "owner", "POST", host="shared.dom.test").status_code == 201

    twice = domains(daemon, "claimer", "POST", host="shared.dom.test")
    assert twice.status_code == 409
    assert "app 'owner'" in twice.json()["detail"]
    default = domains(daemon, "claimer", "POST", host="owner.localhost")
    assert default.status_code == 409
    assert "default host of app 'owner'" in default.json()["detail"]
    assert domains(daemon, "owner", "POST", host="owner.localhost").status_code == 409

    # A domain that is some future app's default host: that app cannot be created.
    assert domains(daemon, "owner", "POST", host="later.localhost").status_code == 201
    with daemon.client() as api:
        refused = api.post("/api/apps", json={"name": "later"})
    assert refused.status_code == 409
    assert "app 'owner'" in refused.json()["detail"]

    assert domains(daemon, "claimer", "DELETE", host="shared.dom.test").status_code == 404
    assert domains(daemon, "owner", "GET").json()["domains"] == [
        "shared.dom.test",
        "later.localhost",
    ]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("*.dom.test", "DNS-01"),
        ("127.0.0.1", "IP address"),
        ("under_score.dom.test", "invalid host name"),
        ("nodots", "invalid host name"),
        ("a" * 64 + ".dom.test", "invalid host name"),
        ("marker.temps.invalid", "reserved"),
    ],
)
def test_a_bad_host_name_is_refused_with_its_reason(
    temps_daemon: TempsDaemon, host: str, reason: str
) -> None:
    daemon, app = temps_daemon, "dom-bad"
    if app not in daemon.apps:
        daemon.create_app(app)
    answer = domains(daemon, app, "POST", host=host)
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["detail"]
    assert domains(daemon, app).json()["domains"] == []


def test_only_an_admin_changes_domains(temps_daemon: TempsDaemon) -> None:
    daemon, app = temps_daemon, "dom-scope"
    daemon.create_app(app)
    _id, token = make_token(daemon, "dom-scope-deploy", app)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{daemon.api_url}/api/apps/{app}/domains"
    assert httpx.post(url, json={"host": "x.dom.test"}, headers=headers).status_code == 403
    listed = httpx.get(url, headers=headers)
    assert listed.status_code == 200 and listed.json()["domains"] == []


def test_domains_outlive_a_restart_and_the_cli_manages_them(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "dom-cli"
    deploy_v1(daemon, tmp_path / "repo", app)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(TEMPS_BIN), "domains", *args],
            env=daemon.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert cli("add", app, "cli.dom.test").splitlines() == [
        f"{app}.localhost  (default)",
        "cli.dom.test",
    ]
    assert "cli.dom.test" in cli("list", app)
    daemon.terminate()
    daemon.restart()
    assert through(daemon, "cli.dom.test") == (200, "v1", "v1")
    assert cli("remove", app, "cli.dom.test").splitlines() == [f"{app}.localhost  (default)"]
    assert through(daemon, "cli.dom.test")[0] == 404
