"""End to end: `temps deploy --image` pulls an image from a private registry (htpasswd
authentication, on loopback) and ships it as a build would, under steady load through
Traefik with no answer that is not 2xx; a pull the registry refuses leaves the live release
serving; a rollback to an image release after a newer git build works.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support.apprepo import DEFAULT_SETTINGS, git_push, make_app_repo
from tests.support.checks import assert_no_failures, assert_serves, push_ok, under_load
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.ports import free_port
from tests.support.registry import Registry

pytestmark = pytest.mark.docker

USER, PASSWORD = "ci", "s3cret-pass"
CLI_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    started = Registry(tmp_path_factory.mktemp("registry"), USER, PASSWORD).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> dict[str, str]:
    """The registry's digest of each image pushed to it, by NAME:TAG."""
    return {
        "demo:v1": registry.push_site("demo", "v1", "v101"),
        "demo:v2": registry.push_site("demo", "v2", "v102"),
    }


def temps(daemon: TempsDaemon, *args: str, stdin: str = "", token: str | None = None) -> Any:
    env = daemon.cli_env()
    if token is not None:
        env["TEMPS_TOKEN"] = token
    return subprocess.run(
        [str(TEMPS_BIN), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def log_in(daemon: TempsDaemon, registry: Registry, password: str = PASSWORD) -> Any:
    return temps(daemon, "registry", "login", registry.address, stdin=f"{USER}\n{password}\n")


def live_app(daemon: TempsDaemon, tmp_path: Path, app: str) -> Path:
    """The app with v1 built from git and live, and the test's gate in its settings, which
    an image deploy takes (it has no temps.toml)."""
    daemon.create_app(app)
    with daemon.client() as api:
        api.patch(f"/api/apps/{app}", json={"settings": DEFAULT_SETTINGS}).raise_for_status()
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1")
    return repo


def deploy_token(daemon: TempsDaemon, app: str) -> str:
    with daemon.client() as api:
        body = {"name": f"ci-{app}", "scope": "deploy", "app": app}
        created = api.post("/api/tokens", json=body)
    created.raise_for_status()
    return str(created.json()["token"])


def test_an_image_deploys_under_load_with_a_deploy_token(
    temps_daemon: TempsDaemon, tmp_path: Path, registry: Registry, pushed: dict[str, str]
) -> None:
    app = "imaged"
    live_app(temps_daemon, tmp_path, app)
    token = deploy_token(temps_daemon, app)
    # The login is the admin's: a deploy token may not change it.
    refused = temps(
        temps_daemon, "registry", "login", registry.address, stdin=f"{USER}\nx\n", token=token
    )
    assert refused.returncode != 0 and "403" in refused.stderr + refused.stdout
    logged = log_in(temps_daemon, registry)
    assert logged.returncode == 0, logged.stderr
    # The release phase runs from the pulled image, with the app's own settings.
    release_phase = {
        "deploy": {**DEFAULT_SETTINGS["deploy"], "release_command": "echo release-$((40+2))"}
    }
    with temps_daemon.client() as api:
        settings = {"settings": {**DEFAULT_SETTINGS, **release_phase}}
        api.patch(f"/api/apps/{app}", json=settings).raise_for_status()
    assert PASSWORD not in (temps_daemon.home / "temps.db").read_bytes().decode("latin-1")
    with under_load(temps_daemon, app) as load:
        image = f"{registry.address}/demo:v1"
        done = temps(temps_daemon, "deploy", app, "--image", image, token=token)
        assert done.returncode == 0, done.stdout + done.stderr
        assert_serves(temps_daemon, app, "v101", 2)
    assert_no_failures(load.summary())
    release = temps_daemon.release(app, 2)
    assert release["source"] == "image"
    assert release["commit"] == ""
    assert release["pulled"] == f"{image}@{pushed['demo:v1']}"
    assert release["image"].startswith(f"temps/{app}:{pushed['demo:v1'][7:19]}")
    assert any(f"Pulling {image}" in line for line in release["log"])
    assert any("release-42" in line for line in release["log"]), "\n".join(release["log"])
    # The app's own tag alone names the pulled image: pruning it frees it, as a built image.
    engine = docker.from_env(timeout=60)
    try:
        served = engine.images.get(release["image"])
        for name in (image, release["pulled"].replace(":v1@", "@")):
            with pytest.raises(docker.errors.ImageNotFound):
                engine.images.get(name)
    finally:
        engine.close()
    assert served.tags == [release["image"]], served.tags


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown tag", "manifest unknown"),
        ("password changed at the registry", "unauthorized"),
        ("no login", "no basic auth credentials"),
        ("unreachable registry", "connection refused"),
    ],
)
def test_a_pull_the_registry_refuses_rejects_the_deploy_and_v1_serves(
    temps_daemon: TempsDaemon,
    tmp_path: Path,
    registry: Registry,
    pushed: dict[str, str],
    case: str,
    reason: str,
) -> None:
    app = "r-" + case.split()[0]
    live_app(temps_daemon, tmp_path, app)
    assert log_in(temps_daemon, registry).returncode == 0
    image = f"{registry.address}/demo:v1"
    if case == "unknown tag":
        image = f"{registry.address}/demo:nope"
    elif case == "no login":
        assert temps(temps_daemon, "registry", "logout", registry.address).returncode == 0
    elif case == "unreachable registry":
        image = f"127.0.0.1:{free_port()}/demo:v1"
    try:
        if case == "password changed at the registry":
            registry.restart("another-pass")
        with under_load(temps_daemon, app) as load:
            done = temps(temps_daemon, "deploy", app, "--image", image)
            assert done.returncode != 0, done.stdout
            assert reason in done.stdout.lower(), done.stdout + done.stderr
            assert_serves(temps_daemon, app, "v1", 1)
        assert_no_failures(load.summary())
    finally:
        if case == "password changed at the registry":
            registry.restart(PASSWORD)
    release = temps_daemon.release(app, 2)
    assert (release["state"], release["failed_step"]) == ("failed", "building")
    assert reason in release["failure_reason"].lower()


def test_a_bad_login_is_refused_with_the_registry_reason_and_not_kept(
    temps_daemon: TempsDaemon, registry: Registry
) -> None:
    done = log_in(temps_daemon, registry, password="wrong")
    assert done.returncode != 0
    assert "refused the login" in done.stderr + done.stdout, done.stderr
    with temps_daemon.client() as api:
        listed = api.get("/api/registries").json()
    assert all(entry["username"] == USER for entry in listed)


def test_rollback_to_an_image_release_after_a_newer_git_build(
    temps_daemon: TempsDaemon, tmp_path: Path, registry: Registry, pushed: dict[str, str]
) -> None:
    app = "backto"
    repo = live_app(temps_daemon, tmp_path, app)
    assert log_in(temps_daemon, registry).returncode == 0
    image = f"{registry.address}/demo:v2"
    assert temps(temps_daemon, "deploy", app, "--image", image).returncode == 0
    assert_serves(temps_daemon, app, "v102", 2)
    make_app_repo(repo, "v3")
    code, output = git_push(repo, temps_daemon.git_url(app))
    assert code == 0, output
    assert_serves(temps_daemon, app, "v3", 3)
    with under_load(temps_daemon, app) as load:
        done = temps(temps_daemon, "rollback", app, "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_serves(temps_daemon, app, "v102", 4)
    assert_no_failures(load.summary())
    release = temps_daemon.release(app, 4)
    assert (release["source"], release["rollback_of"]) == ("rollback", 2)
    assert release["pulled"] == f"{image}@{pushed['demo:v2']}"
    # A redeploy of the live image release deploys the same bytes, without the registry.
    registry.stop()
    try:
        with httpx.Client(base_url=temps_daemon.api_url, timeout=CLI_TIMEOUT) as api:
            headers = {"Authorization": f"Bearer {temps_daemon.admin_token}"}
            answer = api.post(f"/api/apps/{app}/deploy?wait=true", json={}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "live", answer.json()["failure_reason"]
        assert_serves(temps_daemon, app, "v102", 5)
    finally:
        registry.start()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"image": "Not An Image"}, "not an image reference"),
        ({"image": "127.0.0.1:5000/demo:v1", "commit": "abc"}, "not both"),
        ({"image": "demo@sha256:12"}, "not an image digest"),
    ],
)
def test_a_deploy_of_an_unreadable_image_is_refused_before_any_release(
    temps_daemon: TempsDaemon, body: dict[str, str], says: str
) -> None:
    app = "unread"
    with temps_daemon.client() as api:
        if api.get(f"/api/apps/{app}").status_code == 404:
            temps_daemon.create_app(app)
        answer = api.post(f"/api/apps/{app}/deploy", json=body)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["detail"]
    assert temps_daemon.releases(app) == []
