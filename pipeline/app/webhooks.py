"""GitHub and GitLab webhooks: verification and parsing, nothing else. Pushes; GitHub's pull
requests and GitLab's merge requests, which make previews (`RequestEvent`).

Verification runs on the raw body before any parsing; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pipeline.app.names import merge_request_ref, pull_request_ref
from pipeline.errors import InvalidInput, Unauthorized

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class PushEvent:
    ref: str
    after: str
    clone_url: str | None
    deleted: bool = False  # the branch was deleted (`after` all zeros, GitHub's `deleted`)

    def ignored_because(self, branch: str) -> str | None:
        """Why this push deploys nothing, or None when it deploys."""
        if self.ref.startswith("refs/tags/"):
            return f"tag push {self.ref}"
        if self.ref != f"refs/heads/{branch}":
            return f"push to {self.ref}, not the deploy branch {branch}"
        if self.deleted:
            return f"branch {branch} deleted"
        return None


class Intent(StrEnum):
    """What a pull (merge) request event asks of its preview."""

    DEPLOY = "deploy"  # opened, new commits, reopened: deploy the head
    DESTROY = "destroy"  # closed, merged or not
    NOTHING = "nothing"  # labelled, edited, assigned, approved...


# Actions by provider; any other is NOTHING.
_GITHUB_ACTIONS = {
    "opened": Intent.DEPLOY,
    "synchronize": Intent.DEPLOY,
    "reopened": Intent.DEPLOY,
    "closed": Intent.DESTROY,
}
_GITLAB_ACTIONS = {
    "open": Intent.DEPLOY,
    "update": Intent.DEPLOY,
    "reopen": Intent.DEPLOY,
    "close": Intent.DESTROY,
    "merge": Intent.DESTROY,
}


@dataclass(frozen=True)
class RequestEvent:
    """A GitHub pull request or a GitLab merge request event: its preview's ref (served by the
    base repository, the app's upstream), the head commit, and whether it comes from a fork."""

    kind: str  # "pull request" or "merge request"
    number: int  # GitHub's number, GitLab's iid
    action: str  # as the provider names it
    intent: Intent
    ref: str  # refs/pull/42/head, refs/merge-requests/7/head
    head: str | None  # the commit to deploy; None unless the intent is DEPLOY
    head_branch: str  # the branch in the head repository, for messages
    fork: bool  # the head repository is not the base one (or is gone)

    @property
    def label(self) -> str:
        sign = "#" if self.kind == "pull request" else "!"
        return f"{self.kind} {sign}{self.number}"


def verify_github(secret: str, body: bytes, signature: str | None) -> None:
    if not signature:
        raise Unauthorized("missing X-Hub-Signature-256")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise Unauthorized("X-Hub-Signature-256 does not match the payload")


def verify_gitlab(secret_hash: str, token: str | None) -> None:
    if not token:
        raise Unauthorized("missing X-Gitlab-Token")
    if not hmac.compare_digest(secret_hash, hash_secret(token)):
        raise Unauthorized("X-Gitlab-Token is wrong")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_github_push(body: bytes) -> PushEvent:
    data = _json_object(body)
    repository = data.get("repository")
    clone_url = repository.get("clone_url") if isinstance(repository, dict) else None
    after = _sha(data, "after")
    deleted = after == ZERO_SHA or data.get("deleted") is True
    return PushEvent(_text(data, "ref"), after, _optional_url(clone_url), deleted)


def parse_gitlab_push(body: bytes) -> PushEvent:
    data = _json_object(body)
    project = data.get("project")
    clone_url = project.get("git_http_url") if isinstance(project, dict) else None
    after = _sha(data, "after")
    # checkout_sha is the commit to deploy; it is null when the branch was deleted.
    checkout = data.get("checkout_sha")
    if after != ZERO_SHA and isinstance(checkout, str) and _SHA.match(checkout):
        after = checkout
    return PushEvent(_text(data, "ref"), after, _optional_url(clone_url), after == ZERO_SHA)


def parse_github_pull_request(body: bytes) -> RequestEvent:
    """GitHub's `pull_request` event. A fork is a head repository other than the base one, or
    none (the fork was deleted); `head.repo.fork` is not enough: it is true for a pull request
    between two branches of an app whose own repository is a fork."""
    data = _json_object(body)
    action = _text(data, "action")
    number = _number(data, "number")
    request = _object(data, "pull_request")
    head, base = _object(request, "head"), _object(request, "base")
    head_repo, base_repo = head.get("repo"), _object(base, "repo")
    base_name = _text(base_repo, "full_name")
    fork = not isinstance(head_repo, dict) or head_repo.get("full_name") != base_name
    intent = _GITHUB_ACTIONS.get(action, Intent.NOTHING)
    return RequestEvent(
        kind="pull request",
        number=number,
        action=action,
        intent=intent,
        ref=pull_request_ref(number),
        head=_sha(head, "sha") if intent == Intent.DEPLOY else None,
        head_branch=_label(head.get("ref")),
        fork=fork,
    )


def parse_gitlab_merge_request(body: bytes) -> RequestEvent:
    """GitLab's `Merge Request Hook`: a fork when the source project is not the target one."""
    data = _json_object(body)
    attributes = _object(data, "object_attributes")
    action = _text(attributes, "action") if "action" in attributes else "none"
    iid = _number(attributes, "iid")
    source, target = attributes.get("source_project_id"), attributes.get("target_project_id")
    intent = _GITLAB_ACTIONS.get(action, Intent.NOTHING)
    if action == "update" and "oldrev" not in attributes:
        intent = Intent.NOTHING  # a title, label or description changed: no new commit
    head = None
    if intent == Intent.DEPLOY:
        head = _sha(_object(attributes, "last_commit"), "id")
    return RequestEvent(
        kind="merge request",
        number=iid,
        action=action,
        intent=intent,
        ref=merge_request_ref(iid),
        head=head,
        head_branch=_label(attributes.get("source_branch")),
        fork=source is None or source != target,
    )


def _json_object(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("payload is not a JSON object")
    return data


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise InvalidInput(f"payload field {key!r} is missing or not a string")
    return value


def _object(data: Mapping[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"payload field {key!r} is missing or not an object")
    return value


def _number(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**10:
        raise InvalidInput(f"payload field {key!r} is missing or not a positive whole number")
    return value


def _label(value: object) -> str:
    """A branch name for messages only: never trusted further."""
    return value[:255] if isinstance(value, str) else ""


def _sha(data: Mapping[str, object], key: str) -> str:
    value = _text(data, key)
    if not _SHA.match(value):
        raise InvalidInput(f"payload field {key!r} is not a commit SHA")
    return value


def _optional_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) < 2048:
        return value
    return None
