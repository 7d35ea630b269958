"""What one status says and how each provider takes it: states, descriptions, contexts, the
request's URL, headers and body, and the settings' checks. Pure logic, no network."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidInput
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import Release
from pipeline.statuses import destination as dest
from pipeline.statuses import github, gitlab
from pipeline.statuses.destination import Destination, Provider
from pipeline.statuses.status import (
    DEPLOY_CONTEXT,
    MAX_DESCRIPTION,
    PREVIEW_CONTEXT,
    CommitState,
    status_of,
)

SHA = "3f2a9c1e0b7d" + "0" * 28
URL = "http://feature-x--shop.localhost"


def release(state: S, **fields: object) -> Release:
    return Release(app_id=1, number=3, source="push", commit=SHA, state=state, **fields)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (S.QUEUED, CommitState.PENDING),
        (S.BUILDING, CommitState.PENDING),
        (S.SWITCHING, CommitState.PENDING),
        (S.LIVE, CommitState.SUCCESS),
        (S.FAILED, CommitState.FAILURE),
        (S.SUPERSEDED, CommitState.ERROR),
        (S.INTERRUPTED, CommitState.ERROR),
        (S.RETIRED, None),
        (S.STANDBY, None),
    ],
)
def test_each_release_state_is_one_commit_state(state: S, expected: CommitState | None) -> None:
    status = status_of(release(state), URL, preview=True)
    assert (status.state if status else None) == expected


def test_a_live_release_says_its_version_and_url() -> None:
    status = status_of(release(S.LIVE), URL, preview=True)
    assert status is not None
    assert status.description == f"v3 is live at {URL}"
    assert (status.sha, status.target_url, status.context) == (SHA, URL, PREVIEW_CONTEXT)
    assert status_of(release(S.LIVE), URL, preview=False).context == DEPLOY_CONTEXT  # type: ignore[union-attr]


def test_a_failure_says_the_step_and_reason_within_140_characters() -> None:
    reason = "health check failed: 3 probes in a row answered 503\n" + "x" * 300
    failed = release(S.FAILED, failure_reason=reason, failed_step="health_checking")
    status = status_of(failed, URL, preview=True)
    assert status is not None and status.state == CommitState.FAILURE
    assert len(status.description) == MAX_DESCRIPTION
    assert status.description.startswith("v3 failed while health_checking: health check failed")
    assert "\n" not in status.description and status.description.endswith("…")


def test_a_deploy_cancelled_by_a_destroy_is_an_error_not_the_commits_failure() -> None:
    cancelled = release(S.FAILED, failure_reason="cancelled: app 'shop' is being destroyed")
    status = status_of(cancelled, URL, preview=False)
    assert status is not None and status.state == CommitState.ERROR


def test_an_image_deploy_has_no_commit_to_report_on() -> None:
    assert status_of(release(S.LIVE).model_copy(update={"commit": ""}), URL, False) is None


def test_github_takes_the_state_as_it_is_with_its_headers() -> None:
    where = Destination(Provider.GITHUB, "https://ghe.example.com/api/v3", "acme/shop", "t0k")
    status = status_of(release(S.FAILED, failure_reason="boom"), URL, preview=True)
    assert status is not None
    post = github.request(where, status)
    assert post.url == f"https://ghe.example.com/api/v3/repos/acme/shop/statuses/{SHA}"
    assert post.headers == {
        "Authorization": "Bearer t0k",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    assert post.body == {
        "state": "failure",
        "target_url": URL,
        "description": "v3 failed: boom",
        "context": "temps/preview",
    }


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (S.BUILDING, "running"),
        (S.LIVE, "success"),
        (S.FAILED, "failed"),
        (S.SUPERSEDED, "canceled"),
    ],
)
def test_gitlab_takes_its_own_states_and_an_encoded_project_path(state: S, said: str) -> None:
    where = Destination(Provider.GITLAB, "https://gitlab.com/api/v4", "acme/web/shop", "glpat")
    status = status_of(release(state), URL, preview=True, branch="feature/x")
    assert status is not None
    post = gitlab.request(where, status)
    assert post.url == f"https://gitlab.com/api/v4/projects/acme%2Fweb%2Fshop/statuses/{SHA}"
    assert post.headers == {"PRIVATE-TOKEN": "glpat"}
    assert post.body["state"] == said and post.body["name"] == "temps/preview"
    assert post.body["ref"] == "feature/x"


def test_the_token_is_not_in_a_destinations_repr() -> None:
    assert "s3cret" not in repr(Destination(Provider.GITHUB, "https://x", "a/b", "s3cret"))


@pytest.mark.parametrize(
    ("provider", "repository", "ok"),
    [
        (Provider.GITHUB, "acme/shop", True),
        (Provider.GITHUB, "acme/shop.web_2", True),
        (Provider.GITHUB, "acme", False),
        (Provider.GITHUB, "acme/web/shop", False),
        (Provider.GITHUB, "acme/..", False),
        (Provider.GITHUB, "acme/.", False),
        (Provider.GITLAB, "acme/../shop", False),
        (Provider.GITLAB, "acme/web/shop", True),
        (Provider.GITLAB, "12345", True),
        (Provider.GITLAB, "shop", False),
        (Provider.GITLAB, "acme/ shop", False),
    ],
)
def test_repositories_have_their_providers_form(
    provider: Provider, repository: str, ok: bool
) -> None:
    if ok:
        assert dest.checked_repository(provider, repository) == repository
    else:
        with pytest.raises(InvalidInput):
            dest.checked_repository(provider, repository)


def test_the_repository_is_read_from_the_upstream_url() -> None:
    read = dest.repository_from_url
    assert read(Provider.GITHUB, "https://github.com/acme/shop.git") == "acme/shop"
    assert read(Provider.GITHUB, "https://github.com/acme/shop") == "acme/shop"
    assert read(Provider.GITLAB, "https://gitlab.com/acme/web/shop.git") == "acme/web/shop"
    with pytest.raises(InvalidInput, match="no upstream repository"):
        read(Provider.GITHUB, None)
    with pytest.raises(InvalidInput, match="does not name a github repository"):
        read(Provider.GITHUB, "https://git.example.com/a/b/c.git")


def test_the_api_url_defaults_to_the_providers_and_must_be_http() -> None:
    assert dest.checked_api_url(Provider.GITHUB, None) == "https://api.github.com"
    assert dest.checked_api_url(Provider.GITLAB, None) == "https://gitlab.com/api/v4"
    assert dest.checked_api_url(Provider.GITLAB, "https://git.corp/api/v4/") == (
        "https://git.corp/api/v4"
    )
    for bad in ("ftp://x", "git.corp/api", "https://", "https://a b"):
        with pytest.raises(InvalidInput):
            dest.checked_api_url(Provider.GITHUB, bad)
