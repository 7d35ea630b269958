"""An app's previews (review apps): one per branch pushed while `[preview]` is on, each an
app of its own, listed under the app they preview."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.app.names import branch_of
from pipeline.sqlite.models import App
from receiver.api.apps import DaemonDep, PrincipalDep, app_for
from receiver.api.views import AppBrief, apps_view
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class PreviewBrief(AppBrief):
    """A preview as its app lists it: the app it is (`name`, `url`, `live_release`...), and
    the branch it deploys."""

    preview_of: str
    branch: str
    ref: str


def previews_view(daemon: Daemon, parent: App) -> list[PreviewBrief]:
    previews = daemon.store.previews.of(parent)
    briefs = apps_view(daemon.store, daemon.settings, daemon.supervisor.census, previews)
    return [
        PreviewBrief(
            **brief.model_dump(),
            preview_of=parent.name,
            branch=branch_of(preview.preview_ref or ""),
            ref=preview.preview_ref or "",
        )
        for preview, brief in zip(previews, briefs, strict=True)
    ]


@router.get("/apps/{name}/previews")
def list_previews(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[PreviewBrief]:
    """The app's previews, oldest first: each with its branch, URL and live release."""
    return previews_view(daemon, app_for(daemon, who, name))
