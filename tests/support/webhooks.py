"""GitHub- and GitLab-style push deliveries, shaped and signed as the services send them."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

ZERO_SHA = "0" * 40
GITHUB_AGENT = "GitHub-Hookshot/temps-test"
GITLAB_AGENT = "GitLab/temps-test"


def hub_signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` (and temps' own `X-Temps-Signature-256`): sha256= HMAC of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_delivery() -> str:
    return str(uuid.uuid4())


def github_push(
    ref: str, after: str, clone_url: str | None, before: str = ZERO_SHA
) -> dict[str, Any]:
    """The fields of GitHub's `push` event that matter, plus enough of the rest to look real."""
    deleted = after == ZERO_SHA
    repository: dict[str, Any] = {"name": "app", "full_name": "team/app", "private": False}
    if clone_url is not None:
        repository["clone_url"] = clone_url
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO_SHA,
        "deleted": deleted,
        "forced": False,
        "repository": repository,
        "pusher": {"name": "someone", "email": "someone@example.invalid"},
        "head_commit": None if deleted else {"id": after, "message": "change"},
        "commits": [],
    }


def gitlab_push(
    ref: str,
    after: str,
    git_http_url: str | None,
    before: str = ZERO_SHA,
    checkout_sha: str | None = None,
) -> dict[str, Any]:
    """GitLab's `Push Hook` body; `checkout_sha` defaults to `after` (null on a deletion)."""
    if checkout_sha is None and after != ZERO_SHA:
        checkout_sha = after
    project: dict[str, Any] = {"name": "app", "path_with_namespace": "team/app"}
    if git_http_url is not None:
        project["git_http_url"] = git_http_url
    return {
        "object_kind": "tag_push" if ref.startswith("refs/tags/") else "push",
        "event_name": "tag_push" if ref.startswith("refs/tags/") else "push",
        "before": before,
        "after": after,
        "ref": ref,
        "checkout_sha": checkout_sha,
        "user_username": "someone",
        "project": project,
        "commits": [],
        "total_commits_count": 0 if after == ZERO_SHA else 1,
    }


def _github_repo(full_name: str, fork: bool) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    return {
        "id": sum(full_name.encode()),
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {"login": owner, "type": "User"},
        "fork": fork,
        "clone_url": f"https://github.com/{full_name}.git",
        "default_branch": "main",
    }


def github_pull_request(
    action: str,
    number: int,
    head_sha: str,
    head_ref: str = "feature",
    base: str = "team/app",
    head_repo: str | None = "team/app",
    merged: bool = False,
) -> dict[str, Any]:
    """GitHub's `pull_request` event, shaped as its documentation shows it: `head.repo` is
    another repository for a fork's request, and null once that fork was deleted."""
    fork = head_repo is not None and head_repo != base
    head: dict[str, Any] = {
        "label": f"{(head_repo or 'ghost/app').split('/')[0]}:{head_ref}",
        "ref": head_ref,
        "sha": head_sha,
        "user": {"login": (head_repo or "ghost/app").split("/")[0]},
        "repo": None if head_repo is None else _github_repo(head_repo, fork),
    }
    base_part = {
        "label": f"{base.split('/')[0]}:main",
        "ref": "main",
        "sha": "1" * 40,
        "user": {"login": base.split("/")[0]},
        "repo": _github_repo(base, False),
    }
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{base}/pulls/{number}",
            "id": 1000 + number,
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "locked": False,
            "title": "A change",
            "user": {"login": "someone"},
            "draft": False,
            "merged": merged,
            "merge_commit_sha": "2" * 40 if merged else None,
            "head": head,
            "base": base_part,
        },
        "repository": _github_repo(base, False),
        "sender": {"login": "someone", "type": "User"},
    }


def gitlab_merge_request(
    action: str,
    iid: int,
    last_commit: str,
    source_branch: str = "feature",
    source_project_id: int = 1,
    target_project_id: int = 1,
    new_commits: bool = True,
) -> dict[str, Any]:
    """GitLab's `Merge Request Hook` body; `oldrev` is there on an update that brought new
    commits, as GitLab sends it."""
    attributes: dict[str, Any] = {
        "id": 5000 + iid,
        "iid": iid,
        "target_branch": "main",
        "source_branch": source_branch,
        "source_project_id": source_project_id,
        "target_project_id": target_project_id,
        "title": "A change",
        "state": {"close": "closed", "merge": "merged"}.get(action, "opened"),
        "merge_status": "unchecked",
        "url": f"https://gitlab.example/team/app/-/merge_requests/{iid}",
        "last_commit": {"id": last_commit, "message": "change", "title": "change"},
        "action": action,
    }
    if action == "update" and new_commits:
        attributes["oldrev"] = "3" * 40
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"username": "someone"},
        "project": {"id": target_project_id, "path_with_namespace": "team/app"},
        "object_attributes": attributes,
        "repository": {"name": "app"},
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2).encode()


class WebhookClient:
    """Sends deliveries to one daemon's `/hooks/...` endpoints (no API token: none is sent)."""

    def __init__(self, api_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=timeout)

    def __enter__(self) -> WebhookClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def github(
        self,
        app: str,
        body: bytes | Iterable[bytes],
        *,
        secret: str | None,
        event: str = "push",
        delivery: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST /hooks/github/<app>, signed with `secret` unless `signature` is given (or both
        are None: unsigned). A non-bytes body goes out chunked and cannot be signed."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": GITHUB_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or new_delivery(),
            "X-GitHub-Hook-ID": "1",
        }
        if signature is None and secret is not None and isinstance(body, bytes):
            signature = hub_signature(secret, body)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.http.post(f"/hooks/github/{app}", content=body, headers=headers)

    def gitlab(
        self,
        app: str,
        body: bytes | Iterable[bytes],
        *,
        token: str | None,
        event: str = "Push Hook",
        delivery: str | None = None,
    ) -> httpx.Response:
        """POST /hooks/gitlab/<app> with `X-Gitlab-Token: token` (None: no token header)."""
        uuid_value = delivery or new_delivery()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": GITLAB_AGENT,
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": uuid_value,
            "X-Gitlab-Webhook-UUID": "00000000-0000-4000-8000-000000000001",
            "Idempotency-Key": uuid_value,
        }
        if token is not None:
            headers["X-Gitlab-Token"] = token
        return self.http.post(f"/hooks/gitlab/{app}", content=body, headers=headers)
