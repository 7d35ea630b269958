"""X-Forwarded-For is believed only on requests that carry the home's proxy secret."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send

from receiver.proxied import ControlProxyHeaders

SECRET = "s3cret-of-this-home"


def seen_by_the_app(headers: list[tuple[bytes, bytes]]) -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def nothing() -> Any:
        return {}

    async def ignore(message: Any) -> None:
        return None

    scope = {"type": "http", "headers": headers, "client": ("127.0.0.1", 5555), "scheme": "http"}
    asyncio.run(ControlProxyHeaders(app, lambda: SECRET)(scope, nothing, ignore))
    return seen[0]


def test_with_the_secret_the_client_is_the_address_traefik_added() -> None:
    scope = seen_by_the_app(
        [
            (b"x-temps-proxy", SECRET.encode()),
            (b"x-forwarded-for", b"10.9.9.9, 203.0.113.7"),
            (b"x-forwarded-proto", b"https"),
        ]
    )
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"
    assert b"x-temps-proxy" not in dict(scope["headers"]), "the secret reached a route"


def test_without_it_or_with_a_wrong_one_nothing_forwarded_is_believed() -> None:
    forged = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
    for extra in ([], [(b"x-temps-proxy", b"guess")], [(b"x-temps-proxy", SECRET.encode())] * 2):
        scope = seen_by_the_app([*forged, *extra])
        assert (scope["client"], scope["scheme"]) == (("127.0.0.1", 5555), "http")
        assert b"x-temps-proxy" not in dict(scope["headers"])
