"""End to end, previews from webhooks: GitHub pull requests, GitLab merge requests and pushes
of branches, delivered signed to the real daemon, which fetches each head from the app's
upstream (C git's `http-backend` on loopback, standing in for GitHub and GitLab, serving
`refs/pull/<n>/head` and `refs/merge-requests/<iid>/head` in the base repository as they do),
builds it with dockerd and routes it with Traefik.

What a user checks: the app's production host answers every request (2xx) throughout; a pull
request opened answers at `pr-<n>--<app>` with its head commit; new commits update it
blue-green; each deploy posts pending then success (with the preview's URL) or failure (with
the reason) to a stand-in for GitHub's status API; closing it leaves nothing of it; a fork's
request deploys nothing by default; a pushed branch previews and deleting it destroys its
preview; a merge request previews at `mr-<iid>--<app>` and merging it destroys it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_destroy import assert_nothing_left
from tests.e2e.test_previews import WORKER_PROCFILE, assert_preview_serves, previews
from tests.e2e.test_webhooks import (
    MAIN,
    assert_queued,
    deliveries,
    local_ref,
    publish,
    set_source,
    wait_live,
    webhook_secret,
)
from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import assert_no_failures, assert_serves, under_load
from tests.support.credentials import admin
from tests.support.daemon import TempsDaemon
from tests.support.gitserver import GitHttpServer
from tests.support.load import LoadGenerator
from tests.support.statusapi import Posted, StatusAPI
from tests.support.webhooks import (
    ZERO_SHA,
    WebhookClient,
    encode,
    github_pull_request,
    github_push,
    gitlab_merge_request,
    gitlab_push,
)

pytestmark = pytest.mark.docker

PREVIEWS_ON = {"preview": {"enabled": True}}
DESTROY_TIMEOUT = 180.0
STATUS_TOKEN = "ghp_e2e-preview-status-token-0123456789"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path_factory.mktemp("upstream")) as server:
        yield server


@pytest.fixture
def hooks(temps_daemon: TempsDaemon) -> Iterator[WebhookClient]:
    with WebhookClient(temps_daemon.api_url) as client:
        yield client


def previewed_app(
    daemon: TempsDaemon,
    upstream: GitHttpServer,
    hooks: WebhookClient,
    root: Path,
    app: str,
    settings: dict[str, dict[str, object]] | None = None,
) -> tuple[Path, str, str]:
    """The app with previews on (or `settings`), its upstream and secret set, v1 live from a
    push delivery of main: (the work repository, the upstream URL, the secret)."""
    daemon.create_app(app)
    upstream.create(app)
    work, url = root / app, upstream.url(app)
    v1 = publish(upstream, work, app, "v1", settings=settings or PREVIEWS_ON)
    set_source(daemon, app, url)
    secret = webhook_secret(daemon, app)
    assert_queued(hooks.github(app, encode(github_push(MAIN, v1, url)), secret=secret), 1, v1)
    wait_live(daemon, app, 1, v1)
    return work, url, secret


def publish_ref(
    upstream: GitHttpServer,
    work: Path,
    app: str,
    branch: str,
    version: str,
    ref: str,
    procfile: str | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """Commit `version` on `branch` of the work repository (made from main the first time)
    and push it to the upstream as `ref` (a branch, or a request's head)."""
    if git(work, "branch", "--list", branch).strip():
        git(work, "checkout", "-q", branch)
    else:
        git(work, "checkout", "-q", "-b", branch, "main")
    try:
        commit = make_app_repo(
            work, version, settings=PREVIEWS_ON, procfile=procfile, dockerfile_extra=extra
        )
        code, output = git_push(work, str(upstream.push_path(app)), refspec=f"+{branch}:{ref}")
    finally:
        git(work, "checkout", "-q", "main")
    assert code == 0, f"push of {branch} to {ref} upstream failed:\n{output}"
    return commit


def assert_preview_queued(response: httpx.Response, preview: str, number: int, commit: str) -> None:
    release = assert_queued(response, number, commit)
    assert release["preview"] == preview, release
    assert release["url"].startswith(f"http://{preview}."), release


def assert_destroying(response: httpx.Response, preview: str) -> None:
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    assert response.json()["destroying"] == preview, response.json()


def assert_ignored(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    why = str(response.json()["ignored"])
    for word in words:
        assert word in why, f"{word!r} not in {why!r}"
    return why


def report_to(daemon: TempsDaemon, app: str, api: StatusAPI) -> None:
    body = {"provider": "github", "repository": f"acme/{app}", "token": STATUS_TOKEN}
    response = admin(daemon, "PUT", f"/api/apps/{app}/statuses", json=body | {"api_url": api.url})
    assert response.status_code == 200, response.text


def listed(daemon: TempsDaemon, app: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in previews(daemon, app)}


def test_pull_requests_preview_update_and_close_while_the_app_serves(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, hooks: WebhookClient, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "prshop"
    work, _, secret = previewed_app(daemon, upstream, hooks, tmp_path, app)
    production = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", rate=60, max_seconds=1800)
    with StatusAPI() as api:
        report_to(daemon, app, api)
        production.start()
        pull_requests_while_serving(daemon, app, work, upstream, hooks, secret, production, api)
    assert_no_failures(production.summary())
    assert_serves(daemon, app, "v1", 1)


def pull_requests_while_serving(
    daemon: TempsDaemon,
    app: str,
    work: Path,
    upstream: GitHttpServer,
    hooks: WebhookClient,
    secret: str,
    production: LoadGenerator,
    api: StatusAPI,
) -> None:
    preview = f"pr-5--{app}"
    url = f"http://{preview}.{daemon.domain}"
    try:
        time.sleep(0.5)
        # Opened: the head GitHub keeps as refs/pull/5/head in the base repository.
        first = publish_ref(upstream, work, app, "feature", "v501", "refs/pull/5/head")
        opened = encode(github_pull_request("opened", 5, first, head_ref="feature"))
        assert_preview_queued(
            hooks.github(app, opened, secret=secret, event="pull_request"), preview, 1, first
        )
        wait_live(daemon, preview, 1, first)
        assert_preview_serves(daemon, preview, "v501", 1)
        assert_reported(api, first, "success", url)
        shown = listed(daemon, app)[preview]
        assert (shown["branch"], shown["ref"]) == ("pull request #5", "refs/pull/5/head"), shown
        assert local_ref(daemon, preview, "refs/heads/main") == first, "main names what runs"
        assert local_ref(daemon, preview, "refs/remotes/origin/pull/5/head") == first

        # The same delivery again is a duplicate: nothing more is deployed.
        again = hooks.github(app, opened, secret=secret, event="pull_request")
        assert again.status_code == 200 and again.json()["duplicate"], again.text

        # Synchronize: new commits, a blue-green deploy of the preview under its own load.
        with under_load(daemon, preview) as preview_load:
            second = publish_ref(upstream, work, app, "feature", "v502", "refs/pull/5/head")
            pushed = encode(github_pull_request("synchronize", 5, second, head_ref="feature"))
            response = hooks.github(app, pushed, secret=secret, event="pull_request")
            assert_preview_queued(response, preview, 2, second)
            wait_live(daemon, preview, 2, second)
        assert_no_failures(preview_load.summary())
        assert_preview_serves(daemon, preview, "v502", 2)
        assert_reported(api, second, "success", url)
        newer, older = daemon.releases(preview)[:2]
        assert (newer["strategy"], newer["state"], older["state"]) == (
            "blue-green",
            "live",
            "retired",
        )

        # New commits that do not build: a failure status with the reason; v502 serves on.
        broken = publish_ref(
            upstream, work, app, "feature", "v503", "refs/pull/5/head", extra=("RUN false",)
        )
        pushed = encode(github_pull_request("synchronize", 5, broken, head_ref="feature"))
        assert_preview_queued(
            hooks.github(app, pushed, secret=secret, event="pull_request"), preview, 3, broken
        )
        failure = assert_reported(api, broken, "failure", None)
        assert "v3 failed while building" in failure["description"], failure
        assert_preview_serves(daemon, preview, "v502", 2)

        # A label changes nothing.
        labeled = encode(github_pull_request("labeled", 5, second, head_ref="feature"))
        assert_ignored(hooks.github(app, labeled, secret=secret, event="pull_request"), "labeled")

        # A fork's request: not deployed unless the app says forks = true.
        fork_head = publish_ref(upstream, work, app, "outside", "v601", "refs/pull/6/head")
        fork = github_pull_request(
            "opened", 6, fork_head, head_ref="main", head_repo="stranger/app"
        )
        delivery = "fork-delivery-6"
        response = hooks.github(
            app, encode(fork), secret=secret, event="pull_request", delivery=delivery
        )
        assert_ignored(response, "pull request #6", "fork", "forks = true")
        assert f"pr-6--{app}" not in listed(daemon, app)
        assert deliveries(daemon, app)[delivery]["outcome"].startswith("ignored")
        assert daemon.get_app_page(f"pr-6--{app}").status_code == 404
        assert not [p for p in api.posted() if fork_head in p.path], "no status for a fork"

        # Closed (merged): the preview goes, all of it.
        closed = encode(github_pull_request("closed", 5, second, head_ref="feature", merged=True))
        assert_destroying(hooks.github(app, closed, secret=secret, event="pull_request"), preview)
        assert_nothing_left(daemon, preview, timeout=DESTROY_TIMEOUT)
        assert listed(daemon, app) == {}
        time.sleep(0.5)
    finally:
        production.stop()


def assert_reported(api: StatusAPI, commit: str, state: str, url: str | None) -> dict[str, Any]:
    """The statuses posted on the commit, as GitHub keeps them: pending first, then `state`
    (with `url` as its target); the last one's body."""
    path = f"/repos/acme/prshop/statuses/{commit}"

    def mine(posted: list[Posted]) -> list[Posted]:
        return [p for p in posted if p.path == path and p.body["context"] == "temps/preview"]

    seen = mine(api.wait_for(lambda posted: len(mine(posted)) >= 2, DESTROY_TIMEOUT))
    assert [p.body["state"] for p in seen] == ["pending", state], [p.body for p in seen]
    assert seen[-1].headers["authorization"] == f"Bearer {STATUS_TOKEN}"
    if url is not None:
        assert seen[-1].body["target_url"] == url, seen[-1].body
    return seen[-1].body


def test_branch_pushes_and_merge_requests_preview_and_their_ends_destroy(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, hooks: WebhookClient, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "labshop"
    work, url, secret = previewed_app(daemon, upstream, hooks, tmp_path, app)
    branch_preview, request_preview = f"feature-y--{app}", f"mr-3--{app}"
    production = LoadGenerator(daemon.http_url, f"{app}.{daemon.domain}", rate=60, max_seconds=1800)
    production.start()
    try:
        time.sleep(0.5)
        # A push of another branch makes its preview (GitHub), fetched as refs/heads/feature-y.
        pushed = publish_ref(upstream, work, app, "feature-y", "v701", "refs/heads/feature-y")
        body = encode(github_push("refs/heads/feature-y", pushed, url))
        assert_preview_queued(hooks.github(app, body, secret=secret), branch_preview, 1, pushed)
        wait_live(daemon, branch_preview, 1, pushed)
        assert_preview_serves(daemon, branch_preview, "v701", 1)
        assert listed(daemon, app)[branch_preview]["branch"] == "feature-y"

        # A merge request (GitLab), from a branch of the same project.
        head = publish_ref(upstream, work, app, "topic", "v801", "refs/merge-requests/3/head")
        opened = encode(gitlab_merge_request("open", 3, head, source_branch="topic"))
        response = hooks.gitlab(app, opened, token=secret, event="Merge Request Hook")
        assert_preview_queued(response, request_preview, 1, head)
        wait_live(daemon, request_preview, 1, head)
        assert_preview_serves(daemon, request_preview, "v801", 1)
        assert listed(daemon, app)[request_preview]["branch"] == "merge request !3"

        # Merged: its preview goes. Deleted (GitLab's push of zeros): the branch's goes.
        merged = encode(gitlab_merge_request("merge", 3, head, source_branch="topic"))
        response = hooks.gitlab(app, merged, token=secret, event="Merge Request Hook")
        assert_destroying(response, request_preview)
        deleted = encode(gitlab_push("refs/heads/feature-y", ZERO_SHA, url, before=pushed))
        assert_destroying(hooks.gitlab(app, deleted, token=secret), branch_preview)
        assert_nothing_left(daemon, request_preview, timeout=DESTROY_TIMEOUT)
        assert_nothing_left(daemon, branch_preview, timeout=DESTROY_TIMEOUT)
        assert listed(daemon, app) == {}

        # Deleting a branch that has no preview is recorded and does nothing.
        again = encode(github_push("refs/heads/feature-y", ZERO_SHA, url, before=pushed))
        assert_ignored(
            hooks.github(app, again, secret=secret), "refs/heads/feature-y", "no preview"
        )
        time.sleep(0.5)
    finally:
        production.stop()
    assert_no_failures(production.summary())
    assert_serves(daemon, app, "v1", 1)


def test_forks_preview_when_allowed_and_a_request_over_the_cap_is_refused_until_redelivered(
    temps_daemon: TempsDaemon, upstream: GitHttpServer, hooks: WebhookClient, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "capshop"
    settings: dict[str, dict[str, object]] = {"preview": {"enabled": True, "max": 1, "forks": True}}
    work, _, secret = previewed_app(daemon, upstream, hooks, tmp_path, app, settings)

    # With forks = true, a fork's request deploys (with no secret of the app's).
    fork_head = publish_ref(upstream, work, app, "outside", "v901", "refs/pull/7/head")
    fork = github_pull_request("opened", 7, fork_head, head_ref="main", head_repo="stranger/app")
    response = hooks.github(app, encode(fork), secret=secret, event="pull_request")
    assert_preview_queued(response, f"pr-7--{app}", 1, fork_head)
    wait_live(daemon, f"pr-7--{app}", 1, fork_head)
    assert_preview_serves(daemon, f"pr-7--{app}", "v901", 1)

    # At the max (1, on_max = "refuse"): 409 naming it, and the delivery is not kept...
    head = publish_ref(
        upstream, work, app, "second", "v911", "refs/pull/8/head", procfile=WORKER_PROCFILE
    )
    second = encode(github_pull_request("opened", 8, head, head_ref="second"))
    delivery = "cap-delivery-8"
    refused = hooks.github(app, second, secret=secret, event="pull_request", delivery=delivery)
    assert refused.status_code == 409, f"{refused.status_code} {refused.text}"
    assert "max" in refused.json()["detail"], refused.json()
    assert delivery not in deliveries(daemon, app)
    assert set(listed(daemon, app)) == {f"pr-7--{app}"}

    # ... so that once there is room, redelivering it deploys.
    closed = encode(github_pull_request("closed", 7, fork_head, head_repo="stranger/app"))
    assert_destroying(
        hooks.github(app, closed, secret=secret, event="pull_request"), f"pr-7--{app}"
    )
    assert_nothing_left(daemon, f"pr-7--{app}", timeout=DESTROY_TIMEOUT)
    again = hooks.github(app, second, secret=secret, event="pull_request", delivery=delivery)
    assert_preview_queued(again, f"pr-8--{app}", 1, head)
    wait_live(daemon, f"pr-8--{app}", 1, head)
    assert deliveries(daemon, app)[delivery]["outcome"] == f"queued: pr-8--{app}"
    # Its Procfile, fetched with it, declares a worker: a preview runs web only.
    formation = admin(daemon, "GET", f"/api/apps/pr-8--{app}/formation").json()
    assert formation["live_formation"] == {"web": 1, "worker": 0}, formation
    assert_serves(daemon, app, "v1", 1)
