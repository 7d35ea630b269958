"""Tokens: random, shown once, stored as SHA-256; checked in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

import structlog

from pipeline.errors import Forbidden, RateLimited, Unauthorized
from pipeline.settings import Settings
from pipeline.sqlite.models import Scope
from pipeline.sqlite.store import Store, hash_token

log = structlog.get_logger()

GIT_HINT = (
    "temps: authentication required. Use an API token as the password, e.g. "
    "git remote add temps http://temps:$(cat ~/.temps/admin-token)@HOST/APP.git\n"
)


@dataclass(frozen=True)
class Principal:
    name: str
    scope: Scope
    app: str | None

    def require_app(self, app: str) -> None:
        if self.scope != Scope.ADMIN and self.app != app:
            raise Forbidden(f"token {self.name!r} may not act on app {app!r}")

    def require_admin(self) -> None:
        if self.scope != Scope.ADMIN:
            raise Forbidden(f"token {self.name!r} is not an admin token")


def new_token() -> str:
    return "temps_" + secrets.token_urlsafe(32)


def ensure_admin_token(settings: Settings, store: Store) -> None:
    """Create the admin token at first start; re-register it if the database is new."""
    path = settings.admin_token_path
    if not path.exists():
        token = new_token()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    token = path.read_text().strip()
    digest = hash_token(token)
    # A revoked admin token stays revoked: only a token never seen is registered.
    if not any(hmac.compare_digest(row.token_hash, digest) for row in store.token_hashes()):
        store.add_token("admin", token, Scope.ADMIN)


def authenticate(store: Store, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing credentials: send a token")
    digest = hash_token(token)
    found = None
    for row in store.token_hashes():
        # Compare against every row so timing does not reveal which prefix matched.
        if hmac.compare_digest(row.token_hash, digest):
            found = row
    if found is None or found.revoked_at is not None:
        raise Unauthorized("invalid token")
    return Principal(found.name, found.scope, found.app)


class FailureLimiter:
    """Counts failed authentications per client address; too many in the window blocks it."""

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed, self.window = allowed, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        with self._lock:
            recent = self._recent(client)
            if len(recent) >= self.allowed:
                wait = recent[0] + self.window - time.monotonic()
                raise RateLimited(
                    f"too many failed authentications from {client}; retry in {wait:.0f}s"
                )

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(time.monotonic())
            if len(self._failures) > 10_000:  # bound memory under a spray of addresses
                self._failures = {k: v for k, v in self._failures.items() if v}

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] < time.monotonic() - self.window:
            recent.popleft()
        return recent


def guarded_authenticate(
    store: Store, limiter: FailureLimiter, client: str, token: str | None, where: str
) -> Principal:
    """authenticate(), refusing blocked addresses and counting failures (never the secret)."""
    limiter.check(client)
    try:
        return authenticate(store, token)
    except Unauthorized as exc:
        # git's first request never carries credentials; only a wrong secret counts.
        if token:
            limiter.failed(client)
        log.warning(
            "auth.failed", client=client, where=where, reason=str(exc), sent_credentials=bool(token)
        )
        raise


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def basic_password(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return bearer_token(header)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None
