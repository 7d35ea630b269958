"""GitHub and GitLab push webhooks: verification and parsing, nothing else.

Verification runs on the raw body before any parsing; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import InvalidInput, Unauthorized

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class PushEvent:
    ref: str
    after: str
    clone_url: str | None

    @property
    def deleted(self) -> bool:
        return self.after == ZERO_SHA

    def ignored_because(self, branch: str) -> str | None:
        """Why this push deploys nothing, or None when it deploys."""
        if self.ref.startswith("refs/tags/"):
            return f"tag push {self.ref}"
        if self.ref != f"refs/heads/{branch}":
            return f"push to {self.ref}, not the deploy branch {branch}"
        if self.deleted:
            return f"branch {branch} deleted"
        return None


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
    return PushEvent(_text(data, "ref"), _sha(data, "after"), _optional_url(clone_url))


def parse_gitlab_push(body: bytes) -> PushEvent:
    data = _json_object(body)
    project = data.get("project")
    clone_url = project.get("git_http_url") if isinstance(project, dict) else None
    after = _sha(data, "after")
    # checkout_sha is the commit to deploy; it is null when the branch was deleted.
    checkout = data.get("checkout_sha")
    if after != ZERO_SHA and isinstance(checkout, str) and _SHA.match(checkout):
        after = checkout
    return PushEvent(_text(data, "ref"), after, _optional_url(clone_url))


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


def _sha(data: Mapping[str, object], key: str) -> str:
    value = _text(data, key)
    if not _SHA.match(value):
        raise InvalidInput(f"payload field {key!r} is not a commit SHA")
    return value


def _optional_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) < 2048:
        return value
    return None
