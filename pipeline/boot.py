"""Boot the new slot beside the live one, then gate it: N passing health checks in a row."""

from __future__ import annotations

import functools

from pipeline.build import Built, spec_of
from pipeline.context import Deploy
from pipeline.health import wait_until_healthy
from pipeline.runtime import Slot
from pipeline.states import ReleaseState as S


def boot(deploy: Deploy, built: Built) -> Slot:
    ctx = deploy.ctx
    name = ctx.runtime.container_name(deploy.app.name, deploy.release.number)
    deploy.move(S.BOOTING, container=name)
    port = built.config.port
    deploy.say(f"-----> Starting {name} on port {port}")
    instance = ctx.runtime.boot(spec_of(deploy, built, name), port)
    ctx.store.set_details(deploy.id, host_port=instance.host_port)
    return Slot((instance,))


def gate(deploy: Deploy, built: Built, slot: Slot) -> None:
    """Every container of the slot passes the health check; the first that fails fails it."""
    ctx = deploy.ctx
    deploy.move(S.HEALTH_CHECKING)
    check = built.config.healthcheck
    deploy.say(
        f"-----> Health check {check.path}: {check.healthy_threshold} passes in a row needed, "
        f"every {check.interval:g}s, deadline {check.deadline:g}s"
    )
    for instance in slot.instances:
        state = functools.partial(ctx.runtime.state, instance.container)
        wait_until_healthy(instance.url, check, state, deploy.say)
