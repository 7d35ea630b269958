"""The API of an app's build: the Dockerfile a commit is built with, the repository's own or
the one temps makes for its stack (`temps build show`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from pipeline.steps.build import dockerfile_of
from receiver.api.apps import DaemonDep, PrincipalDep, app_for
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
CommitQuery = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9a-f]{4,40}$")]


class BuildView(View):
    app: str
    commit: str
    stack: str | None  # "python", "node", "go", "static"; None: the repository's own Dockerfile
    detected: str | None  # "Python app detected (requirements.txt)"
    dockerfile: str


@router.get("/apps/{name}/build")
async def show_build(
    name: str, daemon: DaemonDep, who: PrincipalDep, commit: CommitQuery = None
) -> BuildView:
    """The Dockerfile that builds `commit` (default: the live one, which `main` names)."""
    app = app_for(daemon, who, name)
    found, chosen = await run_in_threadpool(dockerfile_of, daemon.settings, app, commit)
    plan = chosen.plan
    return BuildView(
        app=name,
        commit=found,
        stack=plan.stack if plan else None,
        detected=plan.detected if plan else None,
        dockerfile=chosen.dockerfile,
    )
