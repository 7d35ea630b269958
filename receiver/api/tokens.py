"""Token management: admin only. A token is shown once, at creation; only its hash is kept."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from pipeline.app.names import is_app_name
from pipeline.errors import InvalidInput
from pipeline.sqlite.models import Scope
from receiver.api.apps import Body, DaemonDep, Number, PrincipalDep, validate_app_name
from receiver.api.views import View
from receiver.auth import new_token
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class TokenRequest(Body):
    name: str
    scope: Literal["admin", "deploy"] = "deploy"
    app: str | None = None


class TokenView(View):
    id: int
    name: str
    scope: Scope
    app: str | None  # the one app a deploy token may act on
    created_at: float
    revoked_at: float | None


class NewToken(TokenView):
    token: str  # shown this once; only its hash is kept


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, daemon: DaemonDep, who: PrincipalDep) -> NewToken:
    who.require_admin()
    if not 1 <= len(body.name) <= 64 or not body.name.isprintable():
        raise InvalidInput("a token name is 1 to 64 printable characters")
    if body.scope == "deploy":
        if body.app is None:
            raise InvalidInput("a deploy token names its app")
        if not is_app_name(body.app):  # a user's app name, or a preview's
            validate_app_name(body.app)
        daemon.store.get_app(body.app)
        daemon.destroyer.ctx.destroying.refuse(body.app)
    elif body.app is not None:
        raise InvalidInput("an admin token covers every app; leave out 'app'")
    secret = new_token()
    row = daemon.store.add_token(body.name, secret, Scope(body.scope), body.app)
    return NewToken(**dict(TokenView.model_validate(row)), token=secret)


class Whoami(View):
    name: str
    scope: Scope
    app: str | None


@router.get("/whoami")
def whoami(who: PrincipalDep) -> Whoami:
    """The token a request carries: what `temps login` checks before it stores one."""
    return Whoami(name=who.name, scope=who.scope, app=who.app)


@router.get("/tokens")
def list_tokens(daemon: DaemonDep, who: PrincipalDep) -> list[TokenView]:
    who.require_admin()
    return [TokenView.model_validate(row) for row in daemon.store.token_hashes()]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: Number, daemon: DaemonDep, who: PrincipalDep) -> Response:
    who.require_admin()
    daemon.store.revoke_token(token_id)
    return Response(status_code=204)
