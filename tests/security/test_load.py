"""A stream of bad pushes and bad webhooks under steady load harms no user request."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.app import webhooks
from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import assert_no_failures, start_load, states
from tests.support.credentials import admin, wrong_token
from tests.support.daemon import TempsDaemon, container_name
from tests.support.liveapp import NON_TERMINAL, app_containers, assert_serves_v1, clone, deploy_v1
from tests.support.wait import poll

pytestmark = pytest.mark.docker

BROKEN: dict[str, dict[str, Any]] = {
    "broken Dockerfile": {"dockerfile_extra": ["RUN echo broken on purpose; exit 3"]},
    "failing health": {"health": False},
    "bad temps.toml": {"toml_text": "port = 8000\n[healthcheck]\ninterval = 'often'\n"},
    "unknown temps.toml key": {"toml_text": "port = 8000\n[deploy]\nstrategy_ = 'x'\n"},
}


ROUNDS = 3  # of every bad push and webhook above, one after the other


def bad_webhooks(daemon: TempsDaemon, app: str, secret: str) -> list[tuple[str, int, int]]:
    """(what, expected status, got) for each bad webhook."""
    url = f"{daemon.api_url}/hooks/github/{app}"
    push = json.dumps({"ref": "refs/heads/main", "after": "3" * 40}).encode()
    malformed = b'{"ref": "refs/heads/main", "after": '
    oversized = b'{"padding": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    cases = [
        ("bad signature", push, webhooks.sign(wrong_token(), push), 401),
        ("no signature", push, None, 401),
        ("malformed, signed", malformed, webhooks.sign(secret, malformed), 400),
        ("oversized", oversized, webhooks.sign(secret, oversized), 413),
    ]
    results = []
    for what, body, signature, want in cases:
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        if signature:
            headers["X-Hub-Signature-256"] = signature
        got = httpx.post(url, content=body, headers=headers, timeout=60).status_code
        results.append((what, want, got))
    return results


def test_bad_pushes_and_webhooks_under_load_harm_no_user_request(
    daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "steady-sec"
    repo = tmp_path / app
    make_app_repo(repo, "v0")  # a parent, so that a clone of depth 1 is shallow
    deploy_v1(daemon, repo, app)
    secret = admin(daemon, "POST", f"/api/apps/{app}/webhook-secret").json()["secret"]
    shallow = clone(daemon, app, tmp_path / "shallow", "--depth", "1")
    webhook_answers: list[tuple[str, int, int]] = []

    load = start_load(daemon, app, rate=100.0)
    try:
        time.sleep(1.0)
        for _round in range(ROUNDS):
            for what, opts in BROKEN.items():
                make_app_repo(repo, "v2", **opts)
                code, output = git_push(repo, daemon.git_url(app))
                git(repo, "reset", "-q", "--hard", "HEAD~1")
                assert code != 0, f"{what} was accepted:\n{output}"
            make_app_repo(repo, "v2")
            code, output = git_push(repo, daemon.git_url(app, token=wrong_token()))
            git(repo, "reset", "-q", "--hard", "HEAD~1")
            assert code != 0 and "Authentication failed" in output, output
            make_app_repo(shallow, "v2")
            code, output = git_push(shallow, daemon.git_url(app))
            git(shallow, "reset", "-q", "--hard", "HEAD~1")
            assert code != 0 and "fetch --unshallow" in output, output
            webhook_answers += bad_webhooks(daemon, app, secret)
        time.sleep(1.0)
    finally:
        summary = load.stop()

    assert_no_failures(summary)
    assert summary.versions == ["v1"], summary.per_version
    wrong_answers = [(what, want, got) for what, want, got in webhook_answers if want != got]
    assert not wrong_answers, f"webhooks answered (what, expected, got): {wrong_answers}"
    releases = daemon.releases(app)
    unfinished = [(r["number"], r["state"]) for r in releases if r["state"] in NON_TERMINAL]
    assert not unfinished, f"releases left in flight: {unfinished}"
    assert [(r["number"], r["state"]) for r in releases][-1] == (1, "live")
    assert all(r["state"] == "failed" for r in releases[:-1]), states(daemon, app)
    assert len(releases) == 1 + ROUNDS * len(BROKEN), states(daemon, app)
    containers = poll(
        lambda: app_containers(app), lambda names: names == [container_name(app, 1)], timeout=15
    )
    assert containers == [container_name(app, 1)], f"containers of {app}: {containers}"
    assert_serves_v1(daemon, app)
