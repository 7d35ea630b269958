"""The API of an app's commit statuses: where each deploy's state is reported on its commit
(GitHub's or GitLab's status API; `pipeline.statuses`). Admin only to change; the token goes
in and never comes out, sealed at rest like the app's other secrets."""

from __future__ import annotations

from typing import Annotated, Self

from fastapi import APIRouter, Depends, Response
from fastapi.exceptions import RequestValidationError
from pydantic import model_validator

from pipeline.app.config import text
from pipeline.errors import Conflict, InvalidInput
from pipeline.sqlite.models import App
from pipeline.statuses import destination as dest
from pipeline.statuses.destination import Provider
from pipeline.statuses.report import settings_app
from pipeline.statuses.status import DEPLOY_CONTEXT, PREVIEW_CONTEXT
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.auth import Principal
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
OFF = {
    "status_provider": None,
    "status_repository": None,
    "status_api_url": None,
    "status_token_sealed": None,
}


def admin_only(who: PrincipalDep) -> Principal:
    """An admin's token, checked before the body is: a deploy token is refused (403) whatever
    it sends."""
    who.require_admin()
    return who


AdminDep = Annotated[Principal, Depends(admin_only)]


class StatusesRequest(Body):
    provider: Provider
    repository: str | None = None  # default: the one the app's upstream repo_url names
    token: str
    api_url: str | None = None  # default: the provider's public API

    @model_validator(mode="after")
    def well_formed(self) -> Self:
        try:
            text(self.token, "the token")
            dest.checked_token(self.token)
            if self.repository is not None:
                dest.checked_repository(self.provider, text(self.repository, "the repository"))
            if self.api_url is not None:
                dest.checked_api_url(self.provider, text(self.api_url, "the API URL"))
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return self


class StatusesView(View):
    provider: Provider | None  # None: no statuses are reported
    repository: str | None
    api_url: str | None
    token_set: bool  # the token itself is never shown
    settings_of: str  # the app these are the settings of: a preview's are its app's
    contexts: dict[str, str]  # the context (GitLab: name) each kind of deploy reports under


def statuses_view(owner: App) -> StatusesView:
    return StatusesView(
        provider=Provider(owner.status_provider) if owner.status_provider else None,
        repository=owner.status_repository,
        api_url=owner.status_api_url,
        token_set=owner.status_token_sealed is not None,
        settings_of=owner.name,
        contexts={"deploy": DEPLOY_CONTEXT, "preview": PREVIEW_CONTEXT},
    )


def own_settings(app: App) -> App:
    if app.is_preview:
        raise Conflict(
            f"{app.name} is a preview: it reports commit statuses with its app's settings; "
            "set them on the app"
        )
    return app


@router.get("/apps/{name}/statuses")
def get_statuses(name: str, daemon: DaemonDep, who: PrincipalDep) -> StatusesView:
    """Where the app's deploys report their state on their commits (a preview: its app's)."""
    return statuses_view(settings_app(daemon.store, app_for(daemon, who, name)))


@router.put("/apps/{name}/statuses")
def set_statuses(
    name: str, body: StatusesRequest, daemon: DaemonDep, who: AdminDep
) -> StatusesView:
    """Report each deploy's state (pending, success, failure, error) on its commit, for the
    app's own deploys and its previews'."""
    app = own_settings(app_to_change(daemon, who, name))
    repository = body.repository
    if repository is None:
        try:
            repository = dest.repository_from_url(body.provider, app.repo_url)
        except InvalidInput as exc:
            missing = {"loc": ("body", "repository"), "msg": str(exc), "type": "missing"}
            raise RequestValidationError([missing]) from None
    app = daemon.store.update_app(
        name,
        status_provider=str(body.provider),
        status_repository=repository,
        status_api_url=dest.checked_api_url(body.provider, body.api_url),
        status_token_sealed=daemon.deployer.ctx.sealer.seal(body.token),
    )
    return statuses_view(app)


@router.delete("/apps/{name}/statuses", status_code=204)
def delete_statuses(name: str, daemon: DaemonDep, who: AdminDep) -> Response:
    """Report no more statuses; the token is forgotten."""
    own_settings(app_to_change(daemon, who, name))
    daemon.store.update_app(name, **OFF)
    return Response(status_code=204)
