"""The machines apps run on: the one engine, or every node of the Swarm with its role, state
and this home's containers on it. Admin only: it maps the infrastructure."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from receiver.api.apps import DaemonDep, PrincipalDep
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


@router.get("/nodes")
def list_nodes(daemon: DaemonDep, who: PrincipalDep) -> list[dict[str, Any]]:
    who.require_admin()
    return [dataclasses.asdict(node) for node in daemon.runtime.nodes()]
