"""SQLite access: short transactions, WAL, a busy timeout; schema by Alembic at start
(`pipeline.sqlite.schema`).

Commits are not synced one by one (WAL with `synchronous=NORMAL`): a daemon that is killed
loses nothing, and a power loss can only take back the last commits, never corrupt the file.
An fsync per commit queues behind whatever Docker is writing back, and a rollback inside the
bake window made four of them before its switch (BENCHMARKS.md, "rollback"). Before a step
that cannot be undone (a slot that served is stopped, an image removed) `make_durable()`
syncs the log, so the records that justify the step outlive it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, TypeVar, Unpack, cast

import structlog
from sqlalchemy import Engine, ExceptionContext, and_, delete, event, func, or_, text
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import Session, col, create_engine, select

from pipeline import disk
from pipeline.app.config import AppConfig
from pipeline.errors import Conflict, NotFound, RecordsBusy
from pipeline.release.records import KeptRecord, SlotRecord, TrafficRecord
from pipeline.release.states import ReleaseState
from pipeline.sqlite.backups import Backups
from pipeline.sqlite.certificates import Certificates
from pipeline.sqlite.cron import CronRuns
from pipeline.sqlite.deliveries import Deliveries
from pipeline.sqlite.domains import Domains
from pipeline.sqlite.models import (
    App,
    Counts,
    Release,
    ReleaseEvent,
    ReleaseLog,
    ReleaseSource,
    Scope,
    Token,
    now,
)
from pipeline.sqlite.mounts import Mounts
from pipeline.sqlite.previews import Previews
from pipeline.sqlite.registries import Registries
from pipeline.sqlite.runs import Runs
from pipeline.sqlite.series import SeriesRecords
from pipeline.sqlite.teardown import Teardown

log = structlog.get_logger()

BUSY_SECONDS = 10.0  # Settings.records_busy_seconds
# Pages each connection keeps of the records, in KiB (SQLite's default is 2,000). The records
# grow with every deploy, and with them what a connection cached, up to that bound, in pieces
# the allocator then could not give back: the daemon's RSS grew with the records. Pages past
# this are read again from the kernel's cache (BENCHMARKS.md, "A day of deploys").
CACHE_KIB = 256
# Connections the daemon keeps to the records, all opened at start (Store.warm): each brings
# its schema and caches, and one opened only when concurrency first peaked grew the RSS then.
# More at once open past these and close when done (SQLAlchemy's overflow).
POOL_SIZE = 5
LOCKED = ("database is locked", "database table is locked")
FULL = "database or disk is full"  # SQLITE_FULL


def is_full(error: BaseException) -> bool:
    """A write SQLite refused for want of space on the disk holding the database."""
    if isinstance(error, sqlite3.OperationalError):
        return FULL in str(error) or getattr(error, "sqlite_errorname", "") == "SQLITE_FULL"
    return disk.is_full(error)


def make_engine(db_url: str, busy_seconds: float = BUSY_SECONDS) -> Engine:
    """The engine of the records. A write waits up to `busy_seconds` for a lock another
    process holds (a backup, an operator's shell, a long transaction), then SQLite gives up:
    the statement fails as RecordsBusy, and its transaction is rolled back whole. A write
    the disk has no room for fails as DiskFull, rolled back whole as well: SQLite keeps the
    file as it was before the transaction, and the next write once there is room goes in."""
    engine = create_engine(
        db_url,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
        pool_size=POOL_SIZE,
    )
    database = engine.url.database
    holder = Path(database).parent if database and database != ":memory:" else Path.cwd()

    @event.listens_for(engine, "handle_error")
    def _refused(context: ExceptionContext) -> None:
        error = context.original_exception
        if isinstance(error, sqlite3.OperationalError) and any(
            words in str(error) for words in LOCKED
        ):
            log.warning("records.busy", waited_seconds=busy_seconds)
            raise RecordsBusy() from error
        if is_full(error):
            refused = disk.full(holder)
            log.error("records.disk_full", path=refused.path, error=str(error))
            raise refused from error

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    return engine


Row = TypeVar("Row", App, Release, Token)


def _row(session: Session, model: type[Row], key: int) -> Row:
    found = session.get(model, key)
    if found is None:
        raise NotFound(f"no {model.__tablename__[:-1]} with id {key}")
    return found


# A release whose slot record (process type -> entries) has an entry naming :container.
IN_SLOT = text(
    "EXISTS (SELECT 1 FROM json_each(releases.slot) AS process, json_each(process.value) AS entry"
    " WHERE json_extract(entry.value, '$.container') = :container)"
)


class ImageUse(NamedTuple):
    """A release as the image prune sees it."""

    image: str | None
    state: ReleaseState
    kept: bool


class ReleaseColumns(TypedDict, total=False):
    """What a new release may be recorded with besides its app, source and commit; what is
    not given has the column's default (no image, the default config, no environment)."""

    strategy: str
    config: AppConfig
    env: str
    image: str | None
    pulled: str | None
    rollback_of: int | None
    formation: Counts | None


class ReleaseFields(ReleaseColumns, total=False):
    """What a release may be queued with: its columns, and the app's environment to set."""

    app_env: str | None


# The columns of a release in brief: what a list of apps shows of each one's release.
BRIEF = (
    "number",
    "state",
    "source",
    "rollback_of",
    "commit",
    "image",
    "pulled",
    "strategy",
    "container",
    "host_port",
    "failure_reason",
    "failed_step",
    "created_at",
    "updated_at",
)


_WITHOUT_TRAFFIC = defer(cast(QueryableAttribute[Any], Release.traffic), raiseload=True)


def _newest(states: tuple[ReleaseState, ...]) -> tuple[Any, Any]:
    """What to join releases with to keep each app's newest in one of `states` (any)."""
    newest = select(Release.app_id, func.max(Release.number).label("number"))
    if states:
        newest = newest.where(col(Release.state).in_(states))
    last = newest.group_by(col(Release.app_id)).subquery()
    on = and_(col(Release.app_id) == last.c.app_id, col(Release.number) == last.c.number)
    return last, on


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """Every read and write of the records; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.domains = Domains(engine)
        self.certificates = Certificates(engine)
        self.mounts = Mounts(engine)
        self.backups = Backups(engine)
        self.deliveries = Deliveries(engine)
        self.runs = Runs(engine)
        self.registries = Registries(engine)
        self.teardown = Teardown(engine)
        self.previews = Previews(engine)
        self.cron = CronRuns(engine)
        self.series = SeriesRecords(engine)
        # Release numbers are per app and allocated by max + 1: serialise that.
        self._numbering = threading.Lock()
        self._merging = threading.Lock()  # a traffic record is read, merged and written
        database = engine.url.database
        self._wal = Path(f"{database}-wal") if database and database != ":memory:" else None

    def _session(self) -> Session:
        # Objects keep the values they were written with after the commit: no reload.
        return Session(self.engine, expire_on_commit=False)

    def compact(self) -> None:
        """Rewrite the database without its free space, and empty the log: what was stored in
        clear before it was sealed leaves no copy behind."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def warm(self) -> None:
        """Open every pooled connection at once and read the schema on each, so the memory
        they hold is taken at start, not when concurrency first peaks."""
        held = [self.engine.connect() for _ in range(POOL_SIZE)]
        for connection in held:
            connection.exec_driver_sql("SELECT count(*) FROM sqlite_master")
        for connection in held:
            connection.close()

    def answers(self) -> bool:
        """The database can be read (for /healthz)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection (at the daemon's stop)."""
        self.engine.dispose()

    def make_durable(self) -> None:
        """Sync every commit so far to disk: the log holds them all until a checkpoint."""
        if self._wal is None:
            return
        try:
            descriptor = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # no commit since the last checkpoint, which synced the database
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    # apps
    def create_app(self, name: str) -> App:
        with self._session() as session:
            if session.exec(select(App).where(App.name == name)).first() is not None:
                raise Conflict(f"app {name!r} already exists")
            app = App(name=name)
            session.add(app)
            session.commit()
            return app

    def get_app(self, name: str) -> App:
        with self._session() as session:
            app = session.exec(select(App).where(App.name == name)).first()
            if app is None:
                raise NotFound(f"no app named {name!r}")
            return app

    def get_app_by_id(self, app_id: int) -> App:
        with self._session() as session:
            return _row(session, App, app_id)

    def update_app(self, name: str, **fields: object) -> App:
        with self._session() as session:
            app = session.exec(select(App).where(App.name == name)).first()
            if app is None:
                raise NotFound(f"no app named {name!r}")
            for key, value in fields.items():
                setattr(app, key, value)
            session.add(app)
            session.commit()
            return app

    def list_apps(self) -> list[App]:
        with self._session() as session:
            return list(session.exec(select(App).order_by(col(App.name))))

    # releases
    def create_release(
        self,
        app: App,
        *,
        source: ReleaseSource,
        commit: str,
        app_env: str | None = None,
        **columns: Unpack[ReleaseColumns],
    ) -> Release:
        """Number and record a queued release; with `app_env`, the app's environment becomes
        that in the same transaction (a rollback brings back the values it ran with)."""
        with self._numbering, self._session() as session:
            last = session.exec(
                select(func.max(Release.number)).where(Release.app_id == app.pk)
            ).one()
            release = Release(
                app_id=app.pk,
                number=(last or 0) + 1,
                source=source,
                commit=commit,
                state=ReleaseState.QUEUED,
                **columns,
            )
            session.add(release)
            session.flush()
            session.add(ReleaseEvent(release_id=release.pk, state=ReleaseState.QUEUED))
            if app_env is not None:
                stored = session.get(App, app.pk)
                assert stored is not None
                stored.env = app_env
                session.add(stored)
            session.commit()
            return release

    def get_release(self, release_id: int) -> Release:
        with self._session() as session:
            return _row(session, Release, release_id)

    def release_by_number(self, app: App, number: int) -> Release:
        with self._session() as session:
            release = session.exec(
                select(Release).where(Release.app_id == app.id, Release.number == number)
            ).first()
            if release is None:
                raise NotFound(f"app {app.name!r} has no release v{number}")
            return release

    def release_with_container(self, container: str) -> Release | None:
        """The newest release recorded with this container (a taken-over standby serves two),
        as its first or in its slot."""
        named = or_(col(Release.container) == container, IN_SLOT.bindparams(container=container))
        with self._session() as session:
            query = select(Release).where(named).order_by(col(Release.id).desc())
            return session.exec(query).first()

    def releases(self, app: App, limit: int = 100) -> list[Release]:
        with self._session() as session:
            query = (
                select(Release)
                .where(Release.app_id == app.id)
                .order_by(col(Release.number).desc())
                .limit(limit)
            )
            return list(session.exec(query))

    def image_uses(self, app: App, limit: int = 1000) -> list[ImageUse]:
        """What the image prune decides on, for the app's newest `limit` releases, newest
        first: each one's image, state and whether it is kept. Only those columns: after every
        deploy, full rows (each traffic report with its switch series) made a peak that grew
        with the app's history."""
        query = (
            select(Release.image, Release.state, col(Release.kept).is_not(None))
            .where(Release.app_id == app.id)
            .order_by(col(Release.number).desc())
            .limit(limit)
        )
        with self._session() as session:
            rows = session.exec(query).all()
        return [ImageUse(image, ReleaseState(state), bool(kept)) for image, state, kept in rows]

    def live_release(self, app: App) -> Release | None:
        return self.newest_in(app, ReleaseState.LIVE)

    def standby_release(self, app: App) -> Release | None:
        return self.newest_in(app, ReleaseState.STANDBY)

    def newest_in(self, app: App, *states: ReleaseState) -> Release | None:
        with self._session() as session:
            return session.exec(
                select(Release)
                .where(Release.app_id == app.id, col(Release.state).in_(states))
                .order_by(col(Release.number).desc())
            ).first()

    def newest_per_app(self, *states: ReleaseState) -> dict[int, Release]:
        """Each app's newest release in one of `states` (in any, without), by app id, in one
        query: a list of every app asks this once, not once per app. Without its traffic
        report (reading it raises): the supervisor and the scheduler ask this each second,
        and validating 500 reports with their switch series held the interpreter ~40 ms."""
        query = select(Release).join(*_newest(states)).options(_WITHOUT_TRAFFIC)
        with self._session() as session:
            return {release.app_id: release for release in session.exec(query)}

    def newest_briefs(self, *states: ReleaseState) -> dict[int, dict[str, Any]]:
        """`newest_per_app` in brief: the release's plain columns (BRIEF), not its
        configuration, traffic report or containers, whose JSON made a list of 500 apps
        take ten times as long."""
        columns = [getattr(Release, name) for name in BRIEF]
        query = select(col(Release.app_id), *columns).join(*_newest(states))
        with self._session() as session:
            rows = session.exec(query).all()
        return {row[0]: dict(zip(BRIEF, row[1:], strict=True)) for row in rows}

    def releases_in(self, *states: ReleaseState) -> dict[int, list[Release]]:
        """Every release in one of `states`, newest first, by app id, in one query."""
        query = (
            select(Release)
            .where(col(Release.state).in_(states))
            .order_by(col(Release.app_id), col(Release.number).desc())
        )
        found: dict[int, list[Release]] = {}
        with self._session() as session:
            for release in session.exec(query):
                found.setdefault(release.app_id, []).append(release)
        return found

    def kept_releases(self, app: App | None = None) -> dict[int, list[Release]]:
        """Every release kept for skew protection (of `app`, or of every app), oldest first,
        by app id, in one query."""
        query = select(Release).where(col(Release.kept).is_not(None))
        if app is not None:
            query = query.where(Release.app_id == app.id)
        found: dict[int, list[Release]] = {}
        with self._session() as session:
            for release in session.exec(query.order_by(col(Release.number))):
                found.setdefault(release.app_id, []).append(release)
        return found

    def set_kept(self, release_id: int, kept: KeptRecord | None) -> Release:
        """Keep a replaced release for skew protection, or (None) no longer."""
        with self._session() as session:
            release = _row(session, Release, release_id)
            release.kept = kept
            release.updated_at = now()
            session.add(release)
            session.commit()
            return release

    def releases_with_clear_env(self) -> list[Release]:
        """Releases whose environment was stored before environments were sealed."""
        with self._session() as session:
            return list(session.exec(select(Release).where(col(Release.env).not_like("sealed:%"))))

    def set_release_env(self, release_id: int, env: str) -> None:
        """Rewrite a release's stored environment as it is (sealed anew), nothing else."""
        with self._session() as session:
            release = session.get(Release, release_id)
            if release is not None:
                release.env = env
                session.add(release)
                session.commit()

    def set_details(
        self,
        release_id: int,
        *,
        image: str | None = None,
        config: AppConfig | None = None,
        strategy: str | None = None,
        host_port: int | None = None,
        slot: SlotRecord | None = None,
        formation: Counts | None = None,
        pulled: str | None = None,
    ) -> Release:
        """What a step learned about a release (None: unchanged); never its state, nor its
        traffic record (`add_traffic`)."""
        changes = dict(image=image, config=config, strategy=strategy, host_port=host_port)
        more = dict(slot=slot, formation=formation, pulled=pulled)
        with self._session() as session:
            release = _row(session, Release, release_id)
            for key, value in {**changes, **more}.items():
                if value is not None:
                    setattr(release, key, value)
            release.updated_at = now()
            session.add(release)
            session.commit()
            return release

    def add_traffic(self, release_id: int, figures: TrafficRecord) -> Release:
        """The parts of `figures` that are set (the switch's, the canary's, the drain's)
        replace those of the release's traffic record; the others are kept. Steps on other
        threads add theirs at the same time (a drain ends while the next switch reports)."""
        parts = {name: value for name, value in figures if value is not None}
        with self._merging, self._session() as session:
            release = _row(session, Release, release_id)
            release.traffic = (release.traffic or TrafficRecord()).model_copy(update=parts)
            release.updated_at = now()
            session.add(release)
            session.commit()
            return release

    def record_state(
        self, release_id: int, state: ReleaseState, was: ReleaseState, **fields: object
    ) -> tuple[Release, float]:
        """A state change and its event in one transaction (`states.transition` is the one
        caller); returns the release and the seconds it spent in `was`."""
        with self._session() as session:
            release = _row(session, Release, release_id)
            if release.state != was:
                raise Conflict(f"release v{release.number} is {release.state}, not {was}")
            entered = session.exec(
                select(func.max(ReleaseEvent.at)).where(ReleaseEvent.release_id == release_id)
            ).one()
            release.state = state
            for key, value in fields.items():
                setattr(release, key, value)
            release.updated_at = now()
            session.add(release)
            session.add(
                ReleaseEvent(release_id=release_id, state=state, was=was, at=release.updated_at)
            )
            session.commit()
            return release, release.updated_at - (entered or release.created_at)

    def events(self, release_id: int) -> list[ReleaseEvent]:
        with self._session() as session:
            return list(
                session.exec(
                    select(ReleaseEvent)
                    .where(ReleaseEvent.release_id == release_id)
                    .order_by(col(ReleaseEvent.id))
                )
            )

    def append_log(self, release_id: int, lines: list[str]) -> None:
        with self._session() as session:
            for line in lines:
                session.add(ReleaseLog(release_id=release_id, line=line))
            session.commit()

    def delete_old_logs(self, app: App, keep: int) -> int:
        """Delete the logs of the app's releases but the newest `keep`; returns the lines."""
        with self._session() as session:
            older = (
                select(Release.id)
                .where(Release.app_id == app.id)
                .order_by(col(Release.number).desc())
                .offset(keep)
            )
            doomed = col(ReleaseLog.release_id).in_(older.scalar_subquery())
            count = session.exec(select(func.count()).select_from(ReleaseLog).where(doomed)).one()
            if count:
                session.execute(delete(ReleaseLog).where(doomed))
                session.commit()
            return int(count)

    def log_lines(self, release_id: int) -> list[str]:
        with self._session() as session:
            rows = session.exec(
                select(ReleaseLog.line)
                .where(ReleaseLog.release_id == release_id)
                .order_by(col(ReleaseLog.id))
            )
            return list(rows)

    # tokens
    def add_token(self, name: str, token: str, scope: Scope, app: str | None = None) -> Token:
        with self._session() as session:
            row = Token(name=name, token_hash=hash_token(token), scope=scope, app=app)
            session.add(row)
            session.commit()
            return row

    def revoke_token(self, token_id: int) -> Token:
        with self._session() as session:
            row = _row(session, Token, token_id)
            if row.revoked_at is None:
                row.revoked_at = now()
                session.add(row)
                session.commit()
            return row

    def token_hashes(self) -> list[Token]:
        with self._session() as session:
            return list(session.exec(select(Token)))
