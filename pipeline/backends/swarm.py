"""`[swarm]` in temps.toml: where the Swarm backend may place an app's containers.

A leaf beside the backends: no docker, nothing of the daemon, so `pipeline/app/config.py`
takes the section from here and the rest of temps.toml stays free of Swarm's terms. A
container's spec carries the constraints as its placement for `Backend.SWARM`
(`pipeline.docker.swarm` hands them to Swarm); the single engine places nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated

from pydantic import Field
from pydantic import dataclasses as pydantic_dataclasses

from pipeline.app.values import TABLE, Text
from pipeline.runtime import Backend

# Swarm's placement constraints, as `docker service create --constraint` takes them.
CONSTRAINT = (
    r"^(node\.(id|hostname|role|platform\.(os|arch)|labels\.[A-Za-z0-9_.-]+)"
    r"|engine\.labels\.[A-Za-z0-9_.-]+) ?(==|!=) ?[A-Za-z0-9_.-]+$"
)
# What a constraint looks like, for one that does not.
CONSTRAINT_FORM = (
    "a placement constraint is node.<id|hostname|role|platform.os|labels.KEY> "
    "or engine.labels.KEY, then == or !=, then a value"
)


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class SwarmSettings:
    """Where an app's containers may run when temps serves a Swarm (`--runtime swarm`)."""

    constraints: Annotated[
        list[Annotated[Text, Field(pattern=CONSTRAINT)]], Field(max_length=10)
    ] = dataclasses.field(default_factory=list)

    @property
    def placement(self) -> Mapping[Backend, tuple[str, ...]]:
        """The placement a container's spec carries for this backend."""
        return {Backend.SWARM: tuple(self.constraints)}
