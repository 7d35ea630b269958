"""Each limit exceeded gives a clear 4xx or a rejected push and changes nothing: request
and webhook bodies, the push size, the number of environment variables, the log kept per
release and the build timeout, each on a daemon with small limits of its own.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.app import webhooks
from tests.support.apprepo import git, git_push, make_app_repo, remote_main
from tests.support.checks import rejection
from tests.support.credentials import admin, bearer
from tests.support.daemon import MANY_FAILURES, TempsDaemon, home_id_of, running_daemon
from tests.support.dockercli import docker, image_exists, lines, remove_app_images
from tests.support.liveapp import (
    Snapshot,
    app_containers,
    assert_serves_v1,
    assert_unchanged,
    deploy_v1,
)
from tests.support.wait import poll

pytestmark = pytest.mark.docker

MAX_PUSH = 256 * 1024
MAX_REQUEST = 4096
MAX_WEBHOOK = 4096
MAX_ENV = 5
MAX_LOG_LINES = 40
LIMIT_ARGS = [
    *MANY_FAILURES,
    "--max-push-bytes",
    str(MAX_PUSH),
    "--max-request-bytes",
    str(MAX_REQUEST),
    "--max-webhook-bytes",
    str(MAX_WEBHOOK),
    "--max-env-vars",
    str(MAX_ENV),
    "--max-log-lines",
    str(MAX_LOG_LINES),
]


@dataclass
class LiveApp:
    daemon: TempsDaemon
    app: str
    repo: Path
    secret: str


@pytest.fixture(scope="module")
def limited(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """A daemon with small limits and an app live on it at v1."""
    home = tmp_path_factory.mktemp("home-limits")
    with running_daemon(home, "test-security-limits", LIMIT_ARGS) as daemon:
        repo = tmp_path_factory.mktemp("limits-repo") / "capped"
        deploy_v1(daemon, repo, "capped")
        answer = admin(daemon, "POST", "/api/apps/capped/webhook-secret")
        yield LiveApp(daemon, "capped", repo, answer.json()["secret"])


def chunks(data: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_api_body_over_the_limit_is_a_413(limited: LiveApp, framing: str) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    env_before = admin(daemon, "GET", f"/api/apps/{app}/config").json()
    body = json.dumps({"env": {"BIG": "x" * (MAX_REQUEST * 2)}}).encode()
    response = httpx.patch(
        f"{daemon.api_url}/api/apps/{app}/config",
        content=body if framing == "content-length" else chunks(body),
        headers={**bearer(daemon.admin_token), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, f"{response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == "application/problem+json"
    assert str(MAX_REQUEST) in response.json()["detail"]
    assert admin(daemon, "GET", f"/api/apps/{app}/config").json() == env_before
    assert_unchanged(daemon, app, before)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_webhook_payload_over_the_limit_is_a_413(limited: LiveApp, framing: str) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    payload = {"ref": "refs/heads/main", "after": "2" * 40, "padding": "x" * MAX_WEBHOOK}
    body = json.dumps(payload).encode()
    response = httpx.post(
        f"{daemon.api_url}/hooks/github/{app}",
        content=body if framing == "content-length" else chunks(body),
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": webhooks.sign(limited.secret, body),
        },
        timeout=30,
    )
    assert response.status_code == 413, f"{response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == "application/problem+json"
    assert admin(daemon, "GET", f"/api/apps/{app}/deliveries").json() == []
    assert_unchanged(daemon, app, before)


def test_a_push_over_the_limit_is_refused_and_deploys_nothing(limited: LiveApp) -> None:
    daemon, app, repo = limited.daemon, limited.app, limited.repo
    before = Snapshot.of(daemon, app)
    # Random bytes do not compress: the pack is about as large as the file.
    (repo / "www" / "blob.bin").write_bytes(os.urandom(MAX_PUSH * 2))
    make_app_repo(repo, "v2")
    code, output = git_push(repo, daemon.git_url(app))
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert code != 0, f"a push over the limit was accepted:\n{output}"
    assert "413" in output, f"git does not show the 413:\n{output}"
    assert_unchanged(daemon, app, before)
    assert_serves_v1(daemon, app)


def test_too_many_env_vars_are_a_400_and_start_no_deploy(limited: LiveApp) -> None:
    daemon, app = limited.daemon, limited.app
    before = Snapshot.of(daemon, app)
    env = {f"VAR_{n}": str(n) for n in range(MAX_ENV + 1)}
    response = admin(daemon, "PATCH", f"/api/apps/{app}/config", json={"env": env})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"at most {MAX_ENV}" in response.json()["detail"], response.text
    assert admin(daemon, "GET", f"/api/apps/{app}/config").json() == {"env": {}, "secrets": []}
    assert_unchanged(daemon, app, before)


# Build steps that print far more lines than the log keeps: at once, or one line at a time
# (each line then reaches the release log on its own).
CHATTY = {
    "burst": "RUN seq 1 300",
    "line-by-line": "RUN for i in $(seq 1 80); do echo line $i; sleep 0.02; done",
}


@pytest.mark.parametrize("output", sorted(CHATTY))
def test_the_log_kept_per_release_is_capped(limited: LiveApp, tmp_path: Path, output: str) -> None:
    daemon, app = limited.daemon, f"chatty-{output}"
    deploy_v1(daemon, tmp_path / app, app, dockerfile_extra=[CHATTY[output]])
    release = daemon.release(app, 1)
    assert release["state"] == "live", release["state"]
    log = release["log"]
    assert len(log) <= MAX_LOG_LINES, f"{len(log)} lines kept, the limit is {MAX_LOG_LINES}"
    marker = f"[log truncated at {MAX_LOG_LINES} lines]"
    assert marker in log, f"the log was cut without saying so; its last lines: {log[-3:]}"
    # Build output is what gets cut; temps' own lines after the marker still tell the outcome.
    after = log[log.index(marker) + 1 :]
    assert after and all(line.startswith("----->") for line in after), after
    assert any(f"v1 is live at http://{app}." in line for line in after), after


@dataclass
class TimedOut:
    daemon: TempsDaemon
    app: str
    commit: str
    code: int
    output: str
    marker: str


BUILD_TIMEOUT = 3


@pytest.fixture(scope="module")
def timed_out(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimedOut]:
    """A push whose build (RUN sleep 30) outlives `--build-timeout 3`."""
    home = tmp_path_factory.mktemp("home-build-timeout")
    args = [*MANY_FAILURES, "--build-timeout", str(BUILD_TIMEOUT)]
    marker = f"temps-build-timeout-{secrets.token_hex(4)}"
    app = "sleepy"
    with running_daemon(home, "test-security-build-timeout", args) as daemon:
        daemon.create_app(app)
        repo = tmp_path_factory.mktemp("sleepy-repo") / app
        commit = make_app_repo(repo, "v1", dockerfile_extra=[f"RUN sleep 30 # {marker}"])
        code, output = git_push(repo, daemon.git_url(app))
        try:
            yield TimedOut(daemon, app, commit, code, output, marker)
        finally:
            for name in build_containers(marker):
                docker("rm", "-f", name, check=False)
            remove_app_images(app)


def build_containers(marker: str) -> list[str]:
    """Containers of the build step that carries `marker` in its command."""
    out = docker("ps", "-a", "--no-trunc", "--format", "{{.Names}}\t{{.Command}}")
    return [line.split("\t")[0] for line in lines(out) if marker in line]


def test_a_build_over_the_timeout_rejects_the_push_naming_it(timed_out: TimedOut) -> None:
    reason = rejection(timed_out.output)
    assert timed_out.code != 0 and reason, f"not rejected:\n{timed_out.output}"
    assert "build timeout" in reason and f"{BUILD_TIMEOUT}s" in reason, reason
    releases = timed_out.daemon.releases(timed_out.app)
    assert [(r["number"], r["state"], r["failed_step"]) for r in releases] == [
        (1, "failed", "building")
    ]
    assert app_containers(timed_out.app) == []
    assert remote_main(timed_out.daemon.git_url(timed_out.app)) is None


def test_a_build_over_the_timeout_is_stopped_and_leaves_no_image(timed_out: TimedOut) -> None:
    """The timeout bounds what a build may cost: the build must not go on in dockerd after
    the push was rejected, nor tag an image for the commit when it ends on its own."""
    leftovers = []
    running = poll(
        lambda: [
            name
            for name in build_containers(timed_out.marker)
            if "Up" in docker("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}")
        ],
        lambda names: not names,
        timeout=10,
        interval=0.5,
    )
    if running:
        leftovers.append(f"10 s after the rejection the build step still runs in {running}")
    tag = f"temps/{timed_out.app}:{timed_out.commit[:12]}-{home_id_of(timed_out.daemon.home)}"
    # The step sleeps 30 s from the push: past that, an unstopped build has finished.
    tagged = poll(lambda: image_exists(tag), bool, timeout=40, interval=1.0)
    if tagged:
        leftovers.append(f"the abandoned build tagged {tag}; a new push of the commit reuses it")
    assert not leftovers, "; ".join(leftovers)
