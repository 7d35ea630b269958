"""The machines apps run on: the one engine, or every node of the Swarm with its role, state
and this home's containers on it. Admin only: it maps the infrastructure."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.runtime import Node
from receiver.api.apps import DaemonDep, PrincipalDep
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


@router.get("/nodes")
def list_nodes(daemon: DaemonDep, who: PrincipalDep) -> list[Node]:
    who.require_admin()
    return daemon.runtime.nodes()
