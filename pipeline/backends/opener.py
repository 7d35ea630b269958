"""The runtime the daemon runs apps on, opened from its `Backend` (`temps serve --runtime`)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.docker.runtime import DockerRuntime
from pipeline.docker.swarm import SwarmRuntime
from pipeline.runtime import Backend, Runtime
from pipeline.settings import Settings

OPENERS: dict[Backend, Callable[[Settings], Runtime]] = {
    Backend.ENGINE: lambda s: DockerRuntime(
        s.instance,
        s.instance_id,
        publish_ports=s.publish_ports,
        build_engine=s.build_engine,
        registry=s.registry,
    ),
    Backend.SWARM: lambda s: SwarmRuntime(s.instance, s.instance_id, s.registry),
}


def open_runtime(settings: Settings) -> Runtime:
    return OPENERS[Backend(settings.runtime)](settings)
