"""Requests that the daemon's own Traefik forwards from the control host.

Traefik serves the API, git and the dashboard at `--control-host` over HTTPS, and sets
X-Forwarded-For (the client's address, after dropping any the client sent) and
X-Forwarded-Proto. Those headers are believed only on a request that also carries this
home's proxy secret, which only that Traefik adds: any other local process could send
X-Forwarded-For too, and name a new address (a fresh rate-limit counter) per request. The
secret never reaches a route.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.traefik.homefile import PROXY_HEADER

_SECRET_HEADER = PROXY_HEADER.lower().encode()


class ControlProxyHeaders:
    def __init__(self, app: ASGIApp, secret: Callable[[], str]) -> None:
        self.app = app
        # Read on the first request: the daemon makes it at start, after the app is built.
        self.secret = functools.cache(secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.believed(scope)
        await self.app(scope, receive, send)

    def believed(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        sent = [value for name, value in headers if name == _SECRET_HEADER]
        if not sent:
            return scope
        kept = [(name, value) for name, value in headers if name != _SECRET_HEADER]
        scope = {**scope, "headers": kept}
        if len(sent) != 1 or not hmac.compare_digest(sent[0], self.secret().encode()):
            return scope
        forwarded = dict(kept)
        clients = forwarded.get(b"x-forwarded-for", b"").decode("latin-1").split(",")
        client = clients[-1].strip()  # the hop Traefik added, whatever came before it
        if client:
            scope["client"] = (client, 0)
        proto = forwarded.get(b"x-forwarded-proto", b"").decode("latin-1")
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        return scope
