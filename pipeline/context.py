"""What a deploy step needs, passed explicitly."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog

from pipeline.docker.runtime import DockerRuntime
from pipeline.journal import Journal
from pipeline.retire import Retirements
from pipeline.sealing import Sealer
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release
from pipeline.sqlite.store import Store


@dataclass
class Context:
    settings: Settings
    store: Store
    journal: Journal
    runtime: DockerRuntime
    sealer: Sealer
    build_slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(2))
    retirements: Retirements = field(default_factory=Retirements)


@dataclass
class Job:
    """One deploy of one release; `release` is refreshed after every state change."""

    ctx: Context
    app: App
    release: Release
    log: structlog.stdlib.BoundLogger

    @property
    def release_id(self) -> int:
        assert self.release.id is not None
        return self.release.id

    @property
    def label(self) -> str:
        return f"v{self.release.number}"

    def say(self, text: str) -> None:
        self.ctx.journal.write(self.release_id, text)
