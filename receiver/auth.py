"""Tokens: random, shown once, stored as SHA-256; checked in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from dataclasses import dataclass

from pipeline.errors import Forbidden, Unauthorized
from pipeline.settings import Settings
from pipeline.store import Store, hash_token

GIT_HINT = (
    "temps: authentication required. Use an API token as the password, e.g. "
    "git remote add temps http://temps:$(cat ~/.temps/admin-token)@HOST/APP.git\n"
)


@dataclass(frozen=True)
class Principal:
    name: str
    scope: str  # admin or deploy
    app: str | None

    def require_app(self, app: str) -> None:
        if self.scope != "admin" and self.app != app:
            raise Forbidden(f"token {self.name!r} may not act on app {app!r}")

    def require_admin(self) -> None:
        if self.scope != "admin":
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
    if not any(hmac.compare_digest(row.token_hash, digest) for row in store.token_hashes()):
        store.add_token("admin", token, "admin")


def authenticate(store: Store, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing credentials: send a token")
    digest = hash_token(token)
    found = None
    for row in store.token_hashes():
        # Compare against every row so timing does not reveal which prefix matched.
        if hmac.compare_digest(row.token_hash, digest):
            found = row
    if found is None:
        raise Unauthorized("invalid token")
    return Principal(found.name, found.scope, found.app)


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
