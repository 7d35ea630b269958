"""Boot the new slot beside the live one, then gate it: N passing health checks in a row."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.app.config import HealthCheck
from pipeline.context import Deploy
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import Instance, Runtime, Slot
from pipeline.sqlite.models import Release
from pipeline.steps.build import Built, spec_of
from pipeline.steps.health import wait_until_healthy

Say = Callable[[str], None]


def boot(deploy: Deploy, built: Built) -> Slot:
    """Start the release's web containers and record them, so that a failure further on
    removes every one of them."""
    ctx = deploy.ctx
    count = formation.web_count(deploy.release.formation)
    names = [
        ctx.runtime.container_name(deploy.app.name, deploy.release.number, role(index))
        for index in range(count)
    ]
    deploy.move(S.BOOTING, container=names[0])
    port = built.config.port
    for name in names:
        deploy.say(f"-----> Starting {name} on port {port}")
    starts = [functools.partial(ctx.runtime.boot, spec_of(deploy, built, n), port) for n in names]
    if len(starts) == 1:
        instances = [starts[0]()]
    else:
        # Started side by side; if one fails, the others go too (the first is the record's
        # own container: `fail` removes it).
        with ThreadPoolExecutor(len(starts), thread_name_prefix="boot") as pool:
            running = [pool.submit(start) for start in starts]
            done = [
                (name, attempt.exception()) for name, attempt in zip(names, running, strict=True)
            ]
        failed = [error for _name, error in done if error is not None]
        if failed:
            for name in names[1:]:
                ctx.runtime.discard(name)
            raise failed[0]
        instances = [attempt.result() for attempt in running]
    slot = Slot(tuple(instances))
    ctx.store.set_details(deploy.id, host_port=slot.first.port, slot=formation.slot_record(slot))
    return slot


def role(index: int, process: str = WEB) -> str:
    # The first web container keeps the name a release has always had.
    if process != WEB:
        return f"{process}-{index + 1}"
    return "" if index == 0 else f"web{index + 1}"


def free_name(deploy: Deploy, number: int, process: str = WEB, first: int = 0) -> str:
    """The first name for a new container of the process type that no container has: one
    scaled away may still be draining, or finishing its job."""
    runtime = deploy.ctx.runtime
    index = first
    while True:
        name = runtime.container_name(deploy.app.name, number, role(index, process))
        if runtime.state(name).status == "missing":
            return name
        index += 1


def start_gated(
    deploy: Deploy, built: Built, name: str, release: Release | None = None
) -> Instance:
    """One more web container of `release` (the deploy's own by default), booted and gated
    beside the slot that serves (a rolling deploy's next one, a scale up); removed if it
    fails, never having been routed to."""
    runtime = deploy.ctx.runtime
    instance = runtime.boot(spec_of(deploy, built, name, release=release), built.config.port)
    try:
        announce(deploy, built.config.healthcheck)
        gate_one(runtime, instance, built.config.healthcheck, deploy.say)
    except TempsError:
        runtime.discard(name)
        raise
    return instance


def gate_one(runtime: Runtime, instance: Instance, check: HealthCheck, say: Say) -> None:
    """One container passes the health check, or this raises why it did not."""
    state = functools.partial(runtime.state, instance.container)
    wait_until_healthy(instance.url, check, state, say)


def announce(deploy: Deploy, check: HealthCheck) -> None:
    deploy.say(
        f"-----> Health check {check.path}: {check.healthy_threshold} passes in a row needed, "
        f"every {check.interval:g}s, deadline {check.deadline:g}s"
    )


def gate(deploy: Deploy, built: Built, slot: Slot) -> None:
    """Every container of the slot passes the health check; the first that fails fails it."""
    ctx = deploy.ctx
    deploy.move(S.HEALTH_CHECKING)
    check = built.config.healthcheck
    announce(deploy, check)
    gates = [
        functools.partial(
            gate_one,
            ctx.runtime,
            instance,
            check,
            _reporter(deploy, instance, many=len(slot.instances) > 1),
        )
        for instance in slot.instances
    ]
    if len(gates) == 1:
        gates[0]()
        return
    # Gated side by side: a slot of three takes one gate's time, not three.
    with ThreadPoolExecutor(len(gates), thread_name_prefix=f"gate-{deploy.app.name}") as pool:
        for running in [pool.submit(one) for one in gates]:
            running.result()  # the first failure, in the slot's order, fails the gate


def _reporter(deploy: Deploy, instance: Instance, many: bool) -> Callable[[str], None]:
    if not many:
        return deploy.say
    return lambda line: deploy.say(f"{instance.container}: {line}")
