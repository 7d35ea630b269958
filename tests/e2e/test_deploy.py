"""End to end: real `git push` to a real daemon, real dockerd, real Traefik.

Each test deploys its own app on one daemon shared by the module, and asserts what a user
of the promise "no request is dropped during a deploy or a failed deploy" would check.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import SLOW_GATE, git_push, make_app_repo, remote_main
from tests.support.checks import (
    REJECTED_RE,
    assert_no_failures,
    same_commit,
    start_load,
    under_load,
)
from tests.support.daemon import TempsDaemon, container_name
from tests.support.dockercli import app_images, container_names, docker
from tests.support.load import SlowRequest, version_of
from tests.support.wait import poll

pytestmark = pytest.mark.docker

# The health gate and every state a release can reach after it has started.
GATE_OR_LATER = {
    "health_checking",
    "switching",
    "draining",
    "live",
    "retired",
    "failed",
    "superseded",
}
SETTLE_TIMEOUT = 15.0
KEEP_RELEASES = 5


# --- checks --------------------------------------------------------------------------------------


def push_version(
    daemon: TempsDaemon, repo: Path, app: str, version: str, **opts: Any
) -> tuple[str, int, str]:
    """Commit `version` in the app repo and push it: (commit, git exit code, git output)."""
    commit = make_app_repo(repo, version, **opts)
    code, output = git_push(repo, daemon.git_url(app))
    return commit, code, output


def deploy(daemon: TempsDaemon, repo: Path, app: str, version: str) -> str:
    commit, code, output = push_version(daemon, repo, app, version)
    assert code == 0, f"git push of {version} failed (exit {code}):\n{output}"
    return commit


def assert_serves(daemon: TempsDaemon, app: str, version: str) -> None:
    response = daemon.get_app_page(app)
    assert response.status_code == 200, f"GET / for {app}: {response.status_code}"
    assert version_of(response.text) == version, (
        f"GET / for {app} served {response.text!r}, expected {version}"
    )
    live = daemon.app(app)["live_release"]
    assert live is not None, f"{app} has no live release after deploying {version}"
    assert response.headers.get("x-temps-release") == f"v{live['number']}", (
        f"X-Temps-Release {response.headers.get('x-temps-release')!r}, live is {live}"
    )


def states(releases: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(r["number"], r["state"]) for r in releases]


def assert_history(daemon: TempsDaemon, app: str, commit: str) -> None:
    """The newest release is live with `commit`; every older one is retired."""

    def settled(releases: list[dict[str, Any]]) -> bool:
        return (
            bool(releases)
            and releases[0]["state"] == "live"
            and all(r["state"] == "retired" for r in releases[1:])
        )

    releases = poll(lambda: daemon.releases(app), settled, timeout=SETTLE_TIMEOUT, interval=0.2)
    assert settled(releases), f"release states of {app}: {states(releases)}"
    assert same_commit(releases[0]["commit"], commit), (
        f"live release commit {releases[0]['commit']}, pushed {commit}"
    )
    numbers = [r["number"] for r in releases]
    assert numbers == sorted(numbers, reverse=True), f"releases not newest first: {numbers}"


def app_container(app: str, number: int) -> str:
    return container_name(app, number)


# --- tests ---------------------------------------------------------------------------------------


def test_pushes_under_load_drop_no_request(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "steady"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    deploy(temps_daemon, repo, app, "v1")
    assert_serves(temps_daemon, app, "v1")

    load = start_load(temps_daemon, app)
    try:
        time.sleep(1.0)
        for number in range(2, 7):
            version = f"v{number}"
            commit = deploy(temps_daemon, repo, app, version)
            assert_serves(temps_daemon, app, version)
            assert_history(temps_daemon, app, commit)
        time.sleep(1.0)
    finally:
        summary = load.stop()

    assert_no_failures(summary)
    assert set(summary.versions) <= {f"v{n}" for n in range(1, 7)}, summary.versions
    assert "v6" in summary.versions, f"the load never saw the last version: {summary.line()}"


def test_request_in_flight_completes_on_old_release(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "inflight"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    deploy(temps_daemon, repo, app, "v1")

    make_app_repo(repo, "v2", settings=SLOW_GATE)
    with ThreadPoolExecutor(max_workers=1) as pool:
        push: Future[tuple[int, str]] = pool.submit(git_push, repo, temps_daemon.git_url(app))
        # The slow request must reach v1 before the switch: start it once v2's health gate
        # has begun, which leaves the gate's 2 s to spare.
        newest = poll(
            lambda: temps_daemon.releases(app)[0],
            lambda r: push.done() or (r["number"] == 2 and r["state"] in GATE_OR_LATER),
            timeout=120,
            interval=0.05,
        )
        assert newest["number"] == 2 and newest["state"] == "health_checking", (
            f"did not catch release 2 in health_checking: {newest['number']} {newest['state']}"
        )
        slow = SlowRequest(temps_daemon.http_url, f"{app}.{temps_daemon.domain}").start()
        code, output = push.result(timeout=300)

    result = slow.result()
    assert code == 0, f"git push of v2 failed (exit {code}):\n{output}"
    assert result.error is None, f"slow request failed: {result.error}"
    assert result.status == 200, f"slow request: {result.status} {result.body!r}"
    assert result.version == "v1", f"slow request answered by {result.body!r}, expected v1"
    assert result.finished - result.started >= 4.5, "the slow request was cut short"
    assert_serves(temps_daemon, app, "v2")
    assert_history(temps_daemon, app, temps_daemon.releases(app)[0]["commit"])
    # The push is answered once v1 is drained; its container stops right after.
    running = poll(
        lambda: container_names(f"label=temps.app={app}", include_stopped=False),
        lambda names: names == [app_container(app, 2)],
        timeout=SETTLE_TIMEOUT,
    )
    assert running == [app_container(app, 2)], f"running after the deploy: {running}"


@pytest.mark.parametrize(
    ("app", "broken", "why"),
    [
        # The pusher must learn why: the probe's status, or the exit and the app's last words.
        ("broken-health", {"health": False}, ["404"]),
        ("broken-crash", {"crash": True}, ["exit", "crashing on purpose"]),
    ],
    ids=["health-404", "exits-at-once"],
)
def test_failed_deploy_is_rejected_and_changes_nothing(
    temps_daemon: TempsDaemon,
    tmp_path: Path,
    app: str,
    broken: dict[str, bool],
    why: list[str],
) -> None:
    temps_daemon.create_app(app)
    repo = tmp_path / app
    good = deploy(temps_daemon, repo, app, "v1")

    with under_load(temps_daemon, app) as load:
        bad, code, output = push_version(temps_daemon, repo, app, "v2", **broken)
    summary = load.summary()

    assert code != 0, f"a broken push was accepted:\n{output}"
    rejected = REJECTED_RE.search(output)
    assert rejected, f"no '[remote rejected]' line in git's output:\n{output}"
    assert rejected.group("reason").strip(), f"rejection without a reason:\n{output}"
    for words in why:
        assert words in output.lower(), f"git's output does not say {words!r}:\n{output}"

    assert same_commit(remote_main(temps_daemon.git_url(app)), good), (
        f"main moved on the remote after a rejected push (good {good}, bad {bad})"
    )
    assert_no_failures(summary)
    assert summary.versions == ["v1"], f"load saw {summary.per_version}"
    assert_serves(temps_daemon, app, "v1")

    releases = poll(
        lambda: temps_daemon.releases(app), lambda rs: rs[0]["state"] == "failed", timeout=10
    )
    failed = releases[0]
    assert failed["number"] == 2 and failed["state"] == "failed", states(releases)
    assert failed["failure_reason"], f"failed release without failure_reason: {failed}"
    assert releases[1]["state"] == "live", states(releases)

    names = poll(
        lambda: container_names(f"label=temps.app={app}"),
        lambda ns: ns == [app_container(app, 1)],
        timeout=SETTLE_TIMEOUT,
    )
    assert names == [app_container(app, 1)], f"containers of {app} after a failed deploy: {names}"


@pytest.mark.parametrize(
    "credentials",
    [("temps", ""), ("temps", "not-the-token"), None],
    ids=["empty-token", "wrong-token", "no-credentials"],
)
def test_push_without_valid_token_is_refused(
    temps_daemon: TempsDaemon, tmp_path: Path, credentials: tuple[str, str] | None
) -> None:
    app = "guarded"
    if app not in temps_daemon.apps:
        temps_daemon.create_app(app)
    repo = tmp_path / app
    make_app_repo(repo, "v1")
    userinfo = ":".join(credentials) + "@" if credentials else ""
    hint = auth_hint(temps_daemon, app, credentials)

    code, output = git_push(repo, f"http://{userinfo}127.0.0.1:{temps_daemon.api_port}/{app}.git")

    assert code != 0, f"push with credentials {credentials!r} was accepted:\n{output}"
    if credentials is not None:
        # git shows a 401's body only once it has tried the credentials it was given; with
        # none and prompts disabled it stops before that.
        assert "Authentication failed" in output, output
        assert hint in output, f"the 401 hint {hint!r} is not shown to the pusher:\n{output}"
    assert temps_daemon.releases(app) == [], "a refused push recorded a release"
    assert remote_main(temps_daemon.git_url(app)) is None, "a refused push moved main"
    assert temps_daemon.app(app)["live_release"] is None
    assert container_names(f"label=temps.app={app}") == []


def auth_hint(daemon: TempsDaemon, app: str, credentials: tuple[str, str] | None) -> str:
    """Check that both git endpoints answer 401 to these credentials; return the hint line."""
    base = f"{daemon.api_url}/{app}.git"
    info = httpx.get(
        f"{base}/info/refs", params={"service": "git-receive-pack"}, auth=credentials, timeout=10
    )
    pack = httpx.post(
        f"{base}/git-receive-pack",
        content=b"0000",
        auth=credentials,
        timeout=10,
        headers={"Content-Type": "application/x-git-receive-pack-request"},
    )
    for response in (info, pack):
        assert response.status_code == 401, f"{response.request.url}: {response.status_code}"
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.lower().startswith("basic"), (
            f"{response.request.url}: WWW-Authenticate {challenge!r}"
        )
    assert info.headers.get("content-type", "").startswith("text/plain"), (
        f"git shows only a text/plain 401 body; got {info.headers.get('content-type')}"
    )
    lines = [line.strip() for line in info.text.splitlines() if line.strip()]
    assert lines, "the 401 has no hint in its body"
    return lines[0]


def test_keeps_the_last_five_images(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "pruned"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    for number in range(1, 8):
        deploy(temps_daemon, repo, app, f"v{number}")
    assert_serves(temps_daemon, app, "v7")

    images = poll(
        lambda: app_images(app),
        lambda refs: len(refs) <= KEEP_RELEASES,
        timeout=SETTLE_TIMEOUT,
        interval=0.5,
    )
    assert len(images) == KEEP_RELEASES, f"docker images temps/{app}: {images}"
    live = temps_daemon.releases(app)[0]
    live_image = live.get("image") or ""
    if live_image.startswith(f"temps/{app}:"):
        assert live_image in images, f"live image {live_image} was pruned: {images}"
    # Pruning selects by the image's app label, its only one; the container has all three.
    image_labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", live_image)
    )
    assert image_labels == {"temps.app": app}, image_labels
    container_labels = json.loads(
        docker("inspect", "--format", "{{json .Config.Labels}}", live["container"])
    )
    assert container_labels["temps.release"] == str(live["number"]), container_labels
    assert container_labels["temps.commit"] == live["commit"], container_labels
    assert container_labels["temps.app"] == app, container_labels


def test_old_slot_waits_on_standby_for_the_bake_window(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "baked"
    bake = 3.0
    temps_daemon.create_app(app)
    repo = tmp_path / app
    make_app_repo(repo, "v1", bake=bake)
    assert git_push(repo, temps_daemon.git_url(app))[0] == 0
    make_app_repo(repo, "v2", bake=bake)
    code, output = git_push(repo, temps_daemon.git_url(app))
    assert code == 0, f"git push of v2 failed (exit {code}):\n{output}"
    pushed_at = time.monotonic()

    assert_serves(temps_daemon, app, "v2")
    assert states(temps_daemon.releases(app)) == [(2, "live"), (1, "standby")]
    running = container_names(f"label=temps.app={app}", include_stopped=False)
    assert running == [app_container(app, 1), app_container(app, 2)], running

    releases = poll(
        lambda: temps_daemon.releases(app),
        lambda rs: states(rs) == [(2, "live"), (1, "retired")],
        timeout=bake + SETTLE_TIMEOUT,
        interval=0.2,
    )
    assert states(releases) == [(2, "live"), (1, "retired")]
    assert time.monotonic() - pushed_at >= bake - 1.0, "standby ended before the bake window"
    running = poll(
        lambda: container_names(f"label=temps.app={app}", include_stopped=False),
        lambda names: names == [app_container(app, 2)],
        timeout=SETTLE_TIMEOUT,
    )
    assert running == [app_container(app, 2)], f"running after the bake window: {running}"
