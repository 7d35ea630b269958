"""The records: apps, their domains, releases, each release's state changes and log, tokens.

Kinds are enums in Python and their value text in SQLite, as the columns always held them;
JSON documents are typed in Python (records, a config, counts) and text in SQLite.
"""

from __future__ import annotations

import enum
import functools
import json
import time
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import Column, Dialect, Index, String, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from pipeline.app.config import AppConfig
from pipeline.release.records import KeptRecord, SlotRecord, TrafficRecord
from pipeline.release.states import ReleaseState

E = TypeVar("E", bound=enum.StrEnum)
T = TypeVar("T")
SHARED_VALUES = 1024  # distinct texts of a shared JSON column kept validated
Counts = dict[str, int]  # a formation: process type -> containers


class ReleaseSource(enum.StrEnum):
    PUSH = "push"
    WEBHOOK = "webhook"
    ROLLBACK = "rollback"
    CONFIG = "config"
    REDEPLOY = "redeploy"
    IMAGE = "image"  # an image pulled from a registry (`temps deploy --image`), no build


class Scope(enum.StrEnum):
    ADMIN = "admin"  # every app, tokens, settings
    DEPLOY = "deploy"  # one app's deploys, rollbacks and logs


class RunState(enum.StrEnum):
    """Where a one-off run (`temps run`) is; every state but the first two is final."""

    PENDING = "pending"  # asked for; no client has attached yet, nothing runs
    RUNNING = "running"  # its container runs, attached to its client
    EXITED = "exited"  # the command ended by itself, with `exit_code`
    TIMED_OUT = "timed_out"  # killed at its timeout
    DISCONNECTED = "disconnected"  # its client went away first; killed
    FAILED = "failed"  # the engine would not start it, or failed under it
    EXPIRED = "expired"  # no client attached in time: never started
    INTERRUPTED = "interrupted"  # the daemon stopped meanwhile; its container removed at start


class CronState(enum.StrEnum):
    """Where a scheduled time of a `[[cron]]` entry is; every state but the first is final."""

    RUNNING = "running"  # its one-off container runs
    SUCCEEDED = "succeeded"  # the command exited 0
    FAILED = "failed"  # exited non-zero, or the engine would not start it
    TIMED_OUT = "timed_out"  # killed at the entry's timeout
    SKIPPED = "skipped"  # the entry's previous run still ran (overlap = "skip")
    INTERRUPTED = "interrupted"  # the daemon stopped meanwhile; its container removed at start


class CronSource(enum.StrEnum):
    SCHEDULE = "schedule"  # due while the daemon ran
    CATCH_UP = "catch_up"  # missed while the daemon was down, run once at its start
    MANUAL = "manual"  # `temps cron run`


class EnumText(TypeDecorator[E], Generic[E]):
    """An enum stored as its value text."""

    impl = String
    cache_ok = True

    def __init__(self, kind: type[E]) -> None:
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(self.kind(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.kind(value)


class JSONRecord(TypeDecorator[T], Generic[T]):
    """A value of type `T` (a record model, a config, a plain mapping) stored as JSON text,
    keys sorted, without the values that are None (every such field defaults to None); read
    back it is validated into a `T` again."""

    impl = String
    cache_ok = True

    def __init__(self, kind: type[T], shared: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.adapter: TypeAdapter[T] = TypeAdapter(kind)
        # `shared`: a value never changed once read (a frozen config) is validated once per
        # distinct text and the same object given to every row that holds it. The supervisor
        # and the scheduler read every live release each second; with 500 apps, validating
        # their configurations again each time held the interpreter some 40 ms a second.
        self.shared = shared
        self._read = (
            functools.lru_cache(maxsize=SHARED_VALUES)(self.adapter.validate_json)
            if shared
            else self.adapter.validate_json
        )

    def process_bind_param(self, value: T | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        document = self.adapter.dump_python(value, mode="json", exclude_none=True)
        return json.dumps(document, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> T | None:
        return None if value is None else self._read(value)


def _enum(kind: type[E]) -> Any:
    return Field(sa_column=Column(EnumText(kind), nullable=False))


def _json(kind: type[T], nullable: bool = False, shared: bool = False) -> Any:
    """A JSON column of `kind`; not nullable, it starts empty (`kind()`). `shared`: see
    JSONRecord."""
    column = JSONRecord(kind, shared)
    if nullable:
        return Field(default=None, sa_column=Column(column, nullable=True))
    return Field(default_factory=kind, sa_column=Column(column, nullable=False))


class _Keyed:
    """`pk`: the id of a stored row, which every row the store returns has."""

    id: int | None

    @property
    def pk(self) -> int:
        if self.id is None:
            raise ValueError(f"{type(self).__name__} has not been stored yet")
        return self.id


def now() -> float:
    return time.time()


class App(_Keyed, SQLModel, table=True):
    __tablename__ = "apps"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: float = Field(default_factory=now)
    env: str = "{}"  # JSON: the environment the next release gets
    settings: dict[str, object] = _json(dict[str, object])  # temps.toml keys set by the API
    # Where webhooks fetch from; sealed values need secret.key from the home dir.
    repo_url: str | None = None
    branch: str = "main"
    repo_token_sealed: str | None = None
    webhook_secret_sealed: str | None = None
    webhook_secret_hash: str | None = None
    notify_url: str | None = None
    notify_secret_sealed: str | None = None
    # With HTTPS on: plain HTTP to a host with a certificate redirects; HSTS when above 0.
    https_redirect: bool = True
    hsts_seconds: int = 0
    formation: Counts = _json(Counts)  # process type -> count; {} is one web container
    # Process types stopped on purpose (`temps ps stop`): none of their containers runs, and
    # nothing restarts them until `temps ps start`.
    stopped: list[str] = _json(list[str])
    # Set before anything of the app is removed (`pipeline.deploy.destroy`): when its destroy
    # was asked, and whether its named volumes go too. A daemon that stops half-way finishes
    # the destroy at its next start; the row goes last, and the mark with it.
    destroying_at: float | None = None
    destroy_volumes: bool = False
    # Set while the app is in maintenance (`temps maintenance`): its hosts answer 503 with
    # its maintenance page, its containers keep running, and deploys go on behind the page.
    maintenance_since: float | None = None
    # A preview (review app) of another app: its id, and the branch it deploys
    # (`refs/heads/feature-x`); None for an app of its own (`pipeline.previews`).
    preview_of: int | None = Field(default=None, foreign_key="apps.id", index=True)
    preview_ref: str | None = None
    # Names of `env` variables marked secret (`temps config set --secret`): a preview gets
    # none of them unless its `[preview] secrets` names it, a fork's preview never.
    secret_keys: list[str] = _json(list[str])
    # A preview's: when its `[preview] setup` command succeeded; it runs until it has once.
    setup_done_at: float | None = None
    # A preview's, made with `[preview] volumes = true`: it mounts its app's named volumes
    # (the app's data) instead of none.
    shares_volumes: bool = False
    # Where each deploy's state is reported on its commit (`pipeline.statuses`): "github" or
    # "gitlab", the repository there, the API's base URL and the token; previews use their
    # app's. None: nothing is reported.
    status_provider: str | None = None
    status_repository: str | None = None
    status_api_url: str | None = None
    status_token_sealed: str | None = None

    @property
    def is_preview(self) -> bool:
        return self.preview_of is not None

    @property
    def destroying(self) -> bool:
        return self.destroying_at is not None

    @property
    def in_maintenance(self) -> bool:
        return self.maintenance_since is not None


class Domain(_Keyed, SQLModel, table=True):
    """A host name an app is served at besides its default `<app>.<domain>`; one app each."""

    __tablename__ = "domains"

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    host: str = Field(unique=True)
    created_at: float = Field(default_factory=now)


class Mount(_Keyed, SQLModel, table=True):
    """A named volume of the app's, mounted at `path` in every container of every release."""

    __tablename__ = "mounts"
    __table_args__ = (UniqueConstraint("app_id", "name"), UniqueConstraint("app_id", "path"))

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    name: str
    path: str
    created_at: float = Field(default_factory=now)


class CertificateSource(enum.StrEnum):
    ACME = "acme"  # ordered and renewed by Traefik's certificate resolver
    UPLOAD = "upload"  # given by the user with its key


class CertificateState(enum.StrEnum):
    PENDING = "pending"  # asked for, not issued yet
    ISSUED = "issued"  # served, until expires_at
    FAILED = "failed"  # the CA refused the order (reason); asked again at retry_at


class Certificate(_Keyed, SQLModel, table=True):
    """The certificate of one host served over HTTPS, as the daemon last saw it."""

    __tablename__ = "certificates"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(unique=True)
    source: CertificateSource = _enum(CertificateSource)
    state: CertificateState = _enum(CertificateState)
    expires_at: float | None = None
    reason: str | None = None
    retry_at: float | None = None
    updated_at: float = Field(default_factory=now)


class Release(_Keyed, SQLModel, table=True):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    number: int
    source: ReleaseSource = _enum(ReleaseSource)
    commit: str
    state: ReleaseState = _enum(ReleaseState)
    strategy: str = ""  # blue-green or recreate; empty until resolved from temps.toml
    image: str | None = None
    # What an image deploy pulled, pinned by the digest the registry gave: its image is this
    # one under the app's own tag. None for a release built from a commit.
    pulled: str | None = None
    config: AppConfig = _json(AppConfig, shared=True)  # the temps.toml the release ran with
    env: str = "{}"  # JSON snapshot of the environment the release ran with
    rollback_of: int | None = None  # the release number a rollback reuses
    traffic: TrafficRecord | None = _json(TrafficRecord, nullable=True)
    formation: Counts | None = _json(Counts, nullable=True)  # what it runs: {"web": 3}
    # Its containers by process type; `container` and `host_port` name the first web one.
    slot: SlotRecord | None = _json(SlotRecord, nullable=True)
    # Replaced, and still reachable by its id until then (skew protection); None otherwise.
    kept: KeptRecord | None = _json(KeptRecord, nullable=True)
    container: str | None = None
    host_port: int | None = None
    failure_reason: str | None = None
    failed_step: str | None = None
    log_tail: str | None = None
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)


class ReleaseEvent(_Keyed, SQLModel, table=True):
    __tablename__ = "release_events"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="releases.id", index=True)
    state: ReleaseState = _enum(ReleaseState)
    was: ReleaseState | None = Field(
        default=None, sa_column=Column(EnumText(ReleaseState), nullable=True)
    )
    at: float = Field(default_factory=now)


class ReleaseLog(SQLModel, table=True):
    __tablename__ = "release_logs"

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="releases.id", index=True)
    at: float = Field(default_factory=now)
    line: str


class Delivery(_Keyed, SQLModel, table=True):
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


class Token(_Keyed, SQLModel, table=True):
    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    token_hash: str = Field(unique=True)
    scope: Scope = _enum(Scope)
    app: str | None = None
    created_at: float = Field(default_factory=now)
    revoked_at: float | None = None


class Run(_Keyed, SQLModel, table=True):
    """A one-off command run in a container of a live release's image (`temps run`)."""

    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    release: int  # the number of the release whose image and environment it ran with
    who: str  # the name of the token that asked for it
    command: list[str] = _json(list[str])
    tty: bool = False
    state: RunState = _enum(RunState)
    container: str | None = None
    exit_code: int | None = None
    detail: str | None = None  # why it ended, when not by itself
    created_at: float = Field(default_factory=now)
    started_at: float | None = None
    ended_at: float | None = None


class CronRun(_Keyed, SQLModel, table=True):
    """One scheduled time of a `[[cron]]` entry. The row is the claim: (app, name, time) is
    unique, so no time runs twice, across threads or a restart."""

    __tablename__ = "cron_runs"
    __table_args__ = (UniqueConstraint("app_id", "name", "scheduled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    name: str  # the entry's
    scheduled_at: float  # the time it was due (a manual run: when it was asked for)
    source: CronSource = _enum(CronSource)
    state: CronState = _enum(CronState)
    release: int | None = None  # the release whose image and environment it ran with
    command: str = ""
    container: str | None = None
    exit_code: int | None = None
    detail: str | None = None  # why it ended, when the command did not say
    output: str = ""  # the last lines it printed
    started_at: float | None = None
    ended_at: float | None = None


class RegistryLogin(_Keyed, SQLModel, table=True):
    """The credentials image deploys pull from one registry with (`temps registry login`)."""

    __tablename__ = "registry_logins"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(unique=True)  # the registry's HOST[:PORT], as image references name it
    username: str
    password_sealed: str
    created_at: float = Field(default_factory=now)


class BackupState(enum.StrEnum):
    """Where a backup is; only a backup that passed its verification is good."""

    RUNNING = "running"  # being written or verified
    GOOD = "good"  # written, restored into scratch and found identical to its manifest
    FAILED = "failed"  # not written, or its verification found a difference (reason)


class Backup(_Keyed, SQLModel, table=True):
    """One backup: of an app's volumes, or (app_id None) of the daemon's records."""

    __tablename__ = "backups"

    id: int | None = Field(default=None, primary_key=True)
    app_id: int | None = Field(default=None, foreign_key="apps.id", index=True)
    destination: str  # where it is stored: a directory, or s3://bucket/prefix
    state: BackupState = _enum(BackupState)
    started_at: float = Field(default_factory=now)
    ended_at: float | None = None
    size: int | None = None  # bytes of its archives
    manifest: str | None = None  # the manifest's name at the destination
    verified_at: float | None = None  # when its last verification ended
    verification: str | None = None  # "ok", or what the last verification found wrong
    reason: str | None = None  # why it failed


class SeriesBucket(SQLModel, table=True):
    """An app's requests over `pipeline.series.buckets.BUCKET_SECONDS` from `at`: counts by
    status class, the latency histogram (`pipeline.series.histogram`, as text) and the web
    containers that restarted. Kept for `--series-retention`."""

    __tablename__ = "series_buckets"

    app_id: int = Field(foreign_key="apps.id", primary_key=True)
    at: int = Field(primary_key=True)  # seconds since the epoch, a multiple of the bucket
    ok: int = 0  # 2xx (and 1xx)
    redirects: int = 0  # 3xx
    refused: int = 0  # 4xx
    failed: int = 0  # 5xx, and requests the client left before an answer
    latency: str = ""  # the histogram's counts
    restarts: int = 0


class SeriesMark(_Keyed, SQLModel, table=True):
    """A change to an app drawn on its graphs' time axis beside its deploys: a scale, a
    maintenance switched on or off. Kept as long as the buckets."""

    __tablename__ = "series_marks"

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="apps.id", index=True)
    at: float = Field(index=True)
    kind: str  # scale, maintenance
    label: str
