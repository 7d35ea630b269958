"""Credentials for requests made by hand, and a record of the secrets a test must find nowhere."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.daemon import TempsDaemon


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def basic(token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"temps:{token}".encode()).decode()}


def admin(daemon: TempsDaemon, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API request with the daemon's admin token."""
    with daemon.client() as api:
        return api.request(method, path, **kwargs)


def make_token(daemon: TempsDaemon, name: str, app: str | None) -> tuple[int, str]:
    """A deploy token of `app` (an admin token when `app` is None): (id, token)."""
    body = (
        {"name": name, "scope": "deploy", "app": app} if app else {"name": name, "scope": "admin"}
    )
    created = admin(daemon, "POST", "/api/tokens", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"]), str(created.json()["token"])


def wrong_token() -> str:
    return "temps_" + secrets.token_urlsafe(32)


@dataclass
class Secrets:
    """Every secret handed to or made by a daemon, to look for where it must not be."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        self.values[name] = value
        return value
