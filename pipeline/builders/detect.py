"""Which Dockerfile builds a commit: the repository's own, or one made for its stack."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.app.config import AppConfig
from pipeline.builders import go, node, python, static
from pipeline.builders.plan import Facts, Plan
from pipeline.builders.source import FILE, Source
from pipeline.errors import BuildFailed

DOCKERFILE = "Dockerfile"
# In this order: the first whose files are there builds the app. A static site comes last:
# an app of another stack often has an index.html or a public/ folder of its own.
STACKS: tuple[Callable[[Source, Facts], Plan | None], ...] = (
    python.detect,
    node.detect,
    go.detect,
    static.detect,
)
LOOKS_FOR = (python.LOOKS_FOR, node.LOOKS_FOR, go.LOOKS_FOR, static.LOOKS_FOR)


def plan_for(source: Source, facts: Facts) -> Plan:
    """The Dockerfile made for the commit's stack; BuildFailed, listing what is looked for,
    when no stack's files are at its root. Only for a commit without a Dockerfile."""
    for detect in STACKS:
        plan = detect(source, facts)
        if plan is not None:
            return plan
    raise BuildFailed(
        "no Dockerfile and no known stack at the root of the repository; temps looks for a "
        f"Dockerfile, {', '.join(LOOKS_FOR)}"
    )


@dataclass(frozen=True)
class Chosen:
    """The Dockerfile that builds a commit, and the plan that made it (None: the repository's)."""

    dockerfile: str
    plan: Plan | None


def facts_of(app: str, config: AppConfig, base_images: Iterable[tuple[str, str]]) -> Facts:
    return Facts(app, config.port, config.processes.get("web"), config.build, dict(base_images))


def dockerfile_for(source: Source, facts: Facts) -> Chosen:
    """The repository's own Dockerfile when it has one, else the one made for its stack."""
    kind = source.names().get(DOCKERFILE)
    if kind == FILE:
        own = source.read(DOCKERFILE) or b""
        return Chosen(own.decode("utf-8", "replace"), None)
    if kind is not None:
        # The engine would follow a link the image checks could not read.
        raise BuildFailed(f"the Dockerfile at the root of the repository is a {kind}, not a file")
    plan = plan_for(source, facts)
    return Chosen(plan.dockerfile, plan)
