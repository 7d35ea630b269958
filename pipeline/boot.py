"""Boot the new slot beside the live one, then gate it: N passing health checks in a row."""

from __future__ import annotations

import functools

from pipeline import formation
from pipeline.build import Built, spec_of
from pipeline.context import Deploy
from pipeline.errors import BootFailed
from pipeline.health import wait_until_healthy
from pipeline.runtime import Instance, Slot
from pipeline.states import ReleaseState as S


def boot(deploy: Deploy, built: Built) -> Slot:
    """Start the release's web containers, each recorded as soon as it runs, so that a
    failure further on removes every one of them."""
    ctx = deploy.ctx
    count = formation.web_count(deploy.release.formation)
    names = [
        ctx.runtime.container_name(deploy.app.name, deploy.release.number, role(index))
        for index in range(count)
    ]
    deploy.move(S.BOOTING, container=names[0])
    port = built.config.port
    instances: list[Instance] = []
    for name in names:
        deploy.say(f"-----> Starting {name} on port {port}")
        try:
            instances.append(ctx.runtime.boot(spec_of(deploy, built, name), port))
        except BootFailed:
            if instances:  # the first one is the record's own container: `fail` removes it
                ctx.runtime.discard(name)
            raise
        slot = Slot(tuple(instances))
        ctx.store.set_details(
            deploy.id, host_port=instances[0].host_port, slot=formation.slot_record(slot)
        )
    return Slot(tuple(instances))


def role(index: int) -> str:
    # The first web container keeps the name a release has always had.
    return "" if index == 0 else f"web{index + 1}"


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
