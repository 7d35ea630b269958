"""The sender against a stand-in for GitHub's and GitLab's APIs on loopback: statuses arrive in
the order they were sent, even when one has to be tried again; an API that fails is tried a
few times, one that refuses once; one that never answers is given up; and no log line holds
the token. Then a deploy's reports: pending then success, or failure, on the commit, with a
preview reporting through its app's settings."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from tenacity import wait_none

from pipeline.app.sealing import Sealer
from pipeline.context import Context
from pipeline.docker.runtime import DockerRuntime
from pipeline.release.journal import Journal
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release, ReleaseSource
from pipeline.statuses.destination import Destination, Provider
from pipeline.statuses.report import report
from pipeline.statuses.sender import StatusSender
from pipeline.statuses.status import CommitState, CommitStatus
from tests.support.statusapi import Posted, StatusAPI
from tests.support.store import open_store

SHA = "c0ffee" * 6 + "abcd"
TOKEN = "ghp_never-in-a-log-line-0123456789"
WAIT = 30.0  # seconds; statuses here take milliseconds when all is well


def sender() -> StatusSender:
    return StatusSender(timeout=1.0, attempts=3, backoff=wait_none())


def status(state: CommitState) -> CommitStatus:
    return CommitStatus(SHA, state, f"v1 {state}", "http://shop.localhost", "temps/deploy")


def github_at(url: str) -> Destination:
    return Destination(Provider.GITHUB, url, "acme/shop", TOKEN)


def states(posted: list[Posted]) -> list[str]:
    return [p.body["state"] for p in posted]


def test_statuses_arrive_in_order_even_when_the_first_is_tried_again() -> None:
    with StatusAPI([503, 201]) as api:
        sending = sender()
        sending.send(github_at(api.url), status(CommitState.PENDING), "shop", "v1")
        sending.send(github_at(api.url), status(CommitState.SUCCESS), "shop", "v1")
        assert sending.wait_idle(WAIT)
        assert states(api.posted()) == ["pending", "pending", "success"]
        first = api.posted()[0]
        assert first.path == f"/repos/acme/shop/statuses/{SHA}"
        assert first.headers["authorization"] == f"Bearer {TOKEN}"
        assert first.headers["x-github-api-version"] == "2022-11-28"


def test_a_refusal_is_not_tried_again_and_the_next_status_still_goes() -> None:
    with StatusAPI([401, 201]) as api, structlog.testing.capture_logs() as logs:
        sending = sender()
        sending.send(github_at(api.url), status(CommitState.PENDING), "shop", "v1")
        sending.send(github_at(api.url), status(CommitState.FAILURE), "shop", "v1")
        assert sending.wait_idle(WAIT)
    assert states(api.posted()) == ["pending", "failure"]
    assert [e["event"] for e in logs if e["event"].startswith("status.")] == [
        "status.refused",
        "status.sent",
    ]
    assert_no_token(logs)


def test_an_api_that_keeps_failing_is_given_up_after_the_last_attempt() -> None:
    with StatusAPI([502]) as api, structlog.testing.capture_logs() as logs:
        sending = sender()
        sending.send(github_at(api.url), status(CommitState.PENDING), "shop", "v1")
        assert sending.wait_idle(WAIT)
    assert len(api.posted()) == 3
    assert [e["event"] for e in logs].count("status.failed") == 3
    assert "status.given_up" in [e["event"] for e in logs]
    assert_no_token(logs)


def test_an_api_that_never_answers_is_given_up_without_holding_anyone() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with structlog.testing.capture_logs() as logs:
            sending = StatusSender(timeout=0.3, attempts=2, backoff=wait_none())
            sending.send(github_at(url), status(CommitState.PENDING), "shop", "v1")
            assert sending.wait_idle(WAIT)
    assert [e["event"] for e in logs].count("status.failed") == 2
    assert_no_token(logs)


def assert_no_token(logs: list[dict[str, Any]]) -> None:
    assert logs and not [entry for entry in logs if TOKEN in repr(entry)]


# --- a deploy's reports, from real records ------------------------------------------------------


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    store = open_store(settings)
    runtime = DockerRuntime(settings.instance, settings.instance_id)  # never called here
    sealer = Sealer.from_key_file(settings.secret_key_path)
    yield Context(settings, store, Journal(store), runtime, sealer, statuses=sender())
    store.engine.dispose()


def reporting(ctx: Context, api: StatusAPI, provider: Provider, repository: str) -> App:
    ctx.store.create_app("shop")
    return ctx.store.update_app(
        "shop",
        status_provider=str(provider),
        status_repository=repository,
        status_api_url=api.url,
        status_token_sealed=ctx.sealer.seal(TOKEN),
    )


def moved(
    ctx: Context, app: App, release: Release, *path: S, failure: Failure | None = None
) -> Release:
    for state in path:
        release = transition(ctx.store, app.name, release, state, failure=failure)
    return release


def test_a_previews_deploy_reports_pending_then_success_through_its_apps_settings(
    ctx: Context,
) -> None:
    with StatusAPI() as api:
        parent = reporting(ctx, api, Provider.GITHUB, "acme/shop")
        preview = ctx.store.previews.create(parent, "refs/heads/feature-x", "feature-x--shop")
        release = ctx.store.create_release(preview, source=ReleaseSource.PUSH, commit=SHA)
        report(ctx, preview, release)
        live = moved(ctx, preview, release, S.BUILDING, S.BOOTING, S.HEALTH_CHECKING)
        live = moved(ctx, preview, live, S.SWITCHING, S.LIVE)
        report(ctx, preview, live)
        assert ctx.statuses.wait_idle(WAIT)
    pending, success = api.posted()
    url = "http://feature-x--shop.localhost"
    assert pending.path == success.path == f"/repos/acme/shop/statuses/{SHA}"
    assert pending.body == {
        "state": "pending",
        "target_url": url,
        "description": "v1 is deploying",
        "context": "temps/preview",
    }
    assert success.body["state"] == "success"
    assert success.body["description"] == f"v1 is live at {url}"


def test_an_apps_failed_deploy_reports_pending_then_failure_to_gitlab(ctx: Context) -> None:
    with StatusAPI() as api:
        app = reporting(ctx, api, Provider.GITLAB, "acme/web/shop")
        release = ctx.store.create_release(app, source=ReleaseSource.PUSH, commit=SHA)
        report(ctx, app, release)
        failure = Failure("the build failed: RUN false returned 1", "building")
        failed = moved(ctx, app, release, S.BUILDING, S.FAILED, failure=failure)
        report(ctx, app, failed)
        assert ctx.statuses.wait_idle(WAIT)
    running, failed_post = api.posted()
    assert running.path == f"/projects/acme%2Fweb%2Fshop/statuses/{SHA}"
    assert running.headers["private-token"] == TOKEN
    assert (running.body["state"], running.body["name"]) == ("running", "temps/deploy")
    assert running.body["ref"] == "main"  # the app's deploy branch
    assert failed_post.body["state"] == "failed"
    assert failed_post.body["description"] == (
        "v1 failed while building: the build failed: RUN false returned 1"
    )


def test_an_app_without_settings_and_an_image_deploy_report_nothing(ctx: Context) -> None:
    with StatusAPI() as api:
        plain = ctx.store.create_app("plain")
        report(ctx, plain, ctx.store.create_release(plain, source=ReleaseSource.PUSH, commit=SHA))
        app = reporting(ctx, api, Provider.GITHUB, "acme/shop")
        image = ctx.store.create_release(app, source=ReleaseSource.IMAGE, commit="")
        report(ctx, app, image)
        assert ctx.statuses.wait_idle(WAIT)
    assert api.posted() == []


def test_a_report_that_cannot_be_made_is_logged_and_never_raises(ctx: Context) -> None:
    with StatusAPI() as api:
        app = reporting(ctx, api, Provider.GITHUB, "acme/shop")
        # Sealed under another key (secret.key replaced): the token cannot be read.
        other = Sealer(b"k" * 32).seal(TOKEN)
        app = ctx.store.update_app(app.name, status_token_sealed=other)
        release = ctx.store.create_release(app, source=ReleaseSource.PUSH, commit=SHA)
        with structlog.testing.capture_logs() as logs:
            report(ctx, app, release)
        assert ctx.statuses.wait_idle(WAIT)
    assert api.posted() == []
    assert [e["event"] for e in logs] == ["status.unreported"]
