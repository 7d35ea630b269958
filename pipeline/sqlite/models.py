"""The records: apps, releases, each release's state changes and log, tokens."""

from __future__ import annotations

import time

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def now() -> float:
    return time.time()


class App(SQLModel, table=True):
    __tablename__ = "apps"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: float = Field(default_factory=now)
    env: str = "{}"  # JSON: the environment the next release gets
    settings: str = "{}"  # JSON: temps.toml keys overridden through the API
    # Where webhooks fetch from; sealed values need secret.key from the home dir.
    repo_url: str | None = None
    branch: str = "main"
    repo_token_sealed: str | None = None
    webhook_secret_sealed: str | None = None
    webhook_secret_hash: str | None = None
    notify_url: str | None = None
    notify_secret_sealed: str | None = None


class Release(SQLModel, table=True):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    number: int
    source: str  # push, webhook, rollback, config, redeploy
    commit: str
    state: str
    strategy: str = ""  # blue-green or recreate; empty until resolved from temps.toml
    image: str | None = None
    config: str = "{}"  # JSON snapshot of the AppConfig the release ran with
    env: str = "{}"  # JSON snapshot of the environment the release ran with
    rollback_of: int | None = None  # the release number a rollback reuses
    traffic: str | None = None  # JSON TrafficReport: requests and errors around the switch
    container: str | None = None
    host_port: int | None = None
    failure_reason: str | None = None
    failed_step: str | None = None
    log_tail: str | None = None
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)


class ReleaseEvent(SQLModel, table=True):
    __tablename__ = "release_events"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="releases.id", index=True)
    state: str
    was: str | None = None
    at: float = Field(default_factory=now)


class ReleaseLog(SQLModel, table=True):
    __tablename__ = "release_logs"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="releases.id", index=True)
    at: float = Field(default_factory=now)
    line: str


class Delivery(SQLModel, table=True):
    """A webhook delivery, kept to answer redeliveries and to show what was ignored and why."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("app_id", "provider", "delivery_id"),
        # A signed body seen once is never acted on again, whatever delivery id it comes with.
        Index("ix_deliveries_body", "app_id", "provider", "body_digest", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    provider: str  # github or gitlab
    delivery_id: str
    event: str
    outcome: str  # queued, ignored: <why>
    body_digest: str | None = None  # SHA-256 of the raw body
    release_id: int | None = None
    received_at: float = Field(default_factory=now)


class Token(SQLModel, table=True):
    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    token_hash: str = Field(unique=True)
    scope: str  # admin or deploy
    app: str | None = None
    created_at: float = Field(default_factory=now)
    revoked_at: float | None = None
