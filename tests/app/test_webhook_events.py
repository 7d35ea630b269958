"""Parsing and verifying the deliveries that make previews: GitHub's `pull_request` and
GitLab's `Merge Request Hook` in the shapes their documentation shows, pushes of branches,
and signatures made as GitHub makes them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from pipeline.app.config import PreviewSettings
from pipeline.app.names import branch_of, candidates
from pipeline.app.webhooks import (
    Intent,
    parse_github_pull_request,
    parse_github_push,
    parse_gitlab_merge_request,
    parse_gitlab_push,
    verify_github,
)
from pipeline.errors import InvalidInput, Unauthorized
from pipeline.previews.requests import refused
from tests.support.webhooks import (
    ZERO_SHA,
    encode,
    github_pull_request,
    github_push,
    gitlab_merge_request,
    gitlab_push,
)

HEAD = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_a_pull_request_opened_or_given_commits_deploys_its_head(action: str) -> None:
    event = parse_github_pull_request(encode(github_pull_request(action, 42, HEAD)))
    assert event.intent == Intent.DEPLOY
    assert (event.number, event.head, event.ref) == (42, HEAD, "refs/pull/42/head")
    assert event.head_branch == "feature"
    assert not event.fork
    assert event.label == "pull request #42"


@pytest.mark.parametrize("merged", [False, True])
def test_a_closed_pull_request_destroys_merged_or_not(merged: bool) -> None:
    body = github_pull_request("closed", 7, HEAD, merged=merged)
    event = parse_github_pull_request(encode(body))
    assert (event.intent, event.head, event.ref) == (Intent.DESTROY, None, "refs/pull/7/head")


@pytest.mark.parametrize("action", ["labeled", "edited", "assigned", "ready_for_review"])
def test_other_pull_request_actions_do_nothing(action: str) -> None:
    event = parse_github_pull_request(encode(github_pull_request(action, 3, HEAD)))
    assert event.intent == Intent.NOTHING


def test_a_pull_request_from_another_repository_or_a_deleted_one_is_a_fork() -> None:
    fork = github_pull_request("opened", 5, HEAD, head_repo="stranger/app")
    assert parse_github_pull_request(encode(fork)).fork
    gone = github_pull_request("synchronize", 5, HEAD, head_repo=None)
    assert parse_github_pull_request(encode(gone)).fork
    # The app's own repository may be a fork of something: a request inside it is not.
    inside = github_pull_request("opened", 6, HEAD)
    inside["pull_request"]["head"]["repo"]["fork"] = True
    inside["pull_request"]["base"]["repo"]["fork"] = True
    assert not parse_github_pull_request(encode(inside)).fork


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.pop("number"),
        lambda b: b.update(number="42"),
        lambda b: b.update(number=True),
        lambda b: b["pull_request"]["head"].update(sha="not-a-sha"),
        lambda b: b["pull_request"].pop("base"),
        lambda b: b.update(pull_request=None),
    ],
)
def test_a_malformed_pull_request_is_invalid_input(damage: object) -> None:
    body = github_pull_request("opened", 42, HEAD)
    assert callable(damage)
    damage(body)
    with pytest.raises(InvalidInput):
        parse_github_pull_request(encode(body))


@pytest.mark.parametrize(("action", "intent"), [("open", Intent.DEPLOY), ("reopen", Intent.DEPLOY)])
def test_a_merge_request_opened_deploys_its_last_commit(action: str, intent: Intent) -> None:
    event = parse_gitlab_merge_request(encode(gitlab_merge_request(action, 9, HEAD)))
    assert (event.intent, event.head, event.ref) == (intent, HEAD, "refs/merge-requests/9/head")
    assert event.label == "merge request !9"
    assert not event.fork


def test_a_merge_request_update_deploys_only_with_new_commits() -> None:
    pushed = parse_gitlab_merge_request(encode(gitlab_merge_request("update", 9, HEAD)))
    assert (pushed.intent, pushed.head) == (Intent.DEPLOY, HEAD)
    retitled = gitlab_merge_request("update", 9, HEAD, new_commits=False)
    assert parse_gitlab_merge_request(encode(retitled)).intent == Intent.NOTHING


@pytest.mark.parametrize("action", ["close", "merge"])
def test_a_merge_request_closed_or_merged_destroys(action: str) -> None:
    event = parse_gitlab_merge_request(encode(gitlab_merge_request(action, 9, HEAD)))
    assert (event.intent, event.head) == (Intent.DESTROY, None)


def test_a_merge_request_from_another_project_is_a_fork() -> None:
    body = gitlab_merge_request("open", 2, HEAD, source_project_id=77, target_project_id=1)
    assert parse_gitlab_merge_request(encode(body)).fork


def test_branch_pushes_and_deletions_parse_as_both_providers_send_them() -> None:
    push = parse_github_push(encode(github_push("refs/heads/feature-x", HEAD, None)))
    assert (push.ref, push.after, push.deleted) == ("refs/heads/feature-x", HEAD, False)
    deleted = github_push("refs/heads/feature-x", ZERO_SHA, None, before=HEAD)
    assert parse_github_push(encode(deleted)).deleted
    lab = parse_gitlab_push(encode(gitlab_push("refs/heads/feature-x", ZERO_SHA, None, HEAD)))
    assert lab.deleted


def test_preview_names_and_listings_of_requests() -> None:
    assert candidates("refs/pull/42/head", "myapp")[0] == "pr-42--myapp"
    assert candidates("refs/merge-requests/7/head", "myapp")[0] == "mr-7--myapp"
    assert candidates("refs/heads/feature-x", "myapp")[0] == "feature-x--myapp"
    assert candidates("refs/heads/pull/42/head", "myapp")[0] == "pull-42-head--myapp"
    assert branch_of("refs/pull/42/head") == "pull request #42"
    assert branch_of("refs/merge-requests/7/head") == "merge request !7"
    assert branch_of("refs/heads/fix/login") == "fix/login"


def test_which_requests_preview_as_the_settings_say() -> None:
    inside = parse_github_pull_request(encode(github_pull_request("opened", 1, HEAD)))
    fork_body = github_pull_request("opened", 2, HEAD, head_repo="stranger/app")
    fork = parse_github_pull_request(encode(fork_body))
    on = PreviewSettings(enabled=True)
    assert refused(on, inside) is None
    why = refused(on, fork)
    assert why is not None and "forks = true" in why
    assert refused(PreviewSettings(enabled=True, forks=True), fork) is None
    off = refused(PreviewSettings(enabled=True, pull_requests=False), inside)
    assert off is not None and "pull_requests = false" in off
    assert refused(PreviewSettings(), inside) is not None
    # Branch patterns are for pushed branches, not requests.
    assert refused(PreviewSettings(enabled=True, branches=["release/*"]), inside) is None


def test_a_delivery_signed_as_github_signs_it_verifies() -> None:
    secret = "It's a Secret to Everybody"
    body = b"Hello, World!"
    # GitHub's documented example of X-Hub-Signature-256 for this secret and payload.
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    verify_github(secret, body, signature)
    payload = json.dumps(github_pull_request("opened", 42, HEAD)).encode()
    signed = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    verify_github(secret, payload, signed)
    with pytest.raises(Unauthorized):
        verify_github(secret, payload + b" ", signed)
    with pytest.raises(Unauthorized):
        verify_github("another secret", payload, signed)
    with pytest.raises(Unauthorized):
        verify_github(secret, payload, None)
