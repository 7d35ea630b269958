"""The scheduled times of `[[cron]]` entries: claimed by inserting their row (the unique
(app, name, time) is the lock), then ended; the newest KEPT of each app are kept."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select, update

from pipeline.sqlite.models import App, CronRun, CronSource, CronState, now
from pipeline.sqlite.records import Records

KEPT = 2000  # per app: a job every minute keeps a day and a half


class CronRuns(Records):
    def claim(
        self,
        app: App,
        name: str,
        scheduled_at: float,
        source: CronSource,
        overlap: bool,
        release: int | None,
        command: str,
    ) -> CronRun | None:
        """Record the time as running, or as skipped while another run of the entry runs
        and `overlap` is off; None when the time is recorded already (claimed by another)."""
        with self._session() as session:
            running = session.exec(
                select(CronRun.id).where(
                    CronRun.app_id == app.pk,
                    CronRun.name == name,
                    CronRun.state == CronState.RUNNING,
                )
            ).first()
            skip = running is not None and not overlap
            run = CronRun(
                app_id=app.pk,
                name=name,
                scheduled_at=scheduled_at,
                source=source,
                state=CronState.SKIPPED if skip else CronState.RUNNING,
                release=release,
                command=command,
                detail=f"run {running} of {name!r} was still running" if skip else None,
                started_at=None if skip else now(),
                ended_at=now() if skip else None,
            )
            session.add(run)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                return None
            kept = (
                select(CronRun.id)
                .where(CronRun.app_id == app.pk)
                .order_by(col(CronRun.id).desc())
                .limit(KEPT)
                .scalar_subquery()
            )
            session.exec(
                delete(CronRun).where(col(CronRun.app_id) == app.pk, col(CronRun.id).not_in(kept))
            )
            session.commit()
            return run

    def started(self, run_id: int, container: str) -> None:
        with self._session() as session:
            session.exec(
                update(CronRun).where(col(CronRun.id) == run_id).values(container=container)
            )
            session.commit()

    def ended(
        self,
        run_id: int,
        state: CronState,
        exit_code: int | None,
        output: str,
        detail: str | None = None,
    ) -> CronRun | None:
        """A running time ends in `state`; the row as it ends, None if it had ended."""
        with self._session() as session:
            done = session.exec(
                update(CronRun)
                .where(col(CronRun.id) == run_id, col(CronRun.state) == CronState.RUNNING)
                .values(
                    state=state, exit_code=exit_code, output=output, detail=detail, ended_at=now()
                )
            )
            session.commit()
            return session.get(CronRun, run_id) if done.rowcount else None

    def running_containers(self) -> list[str]:
        """The containers of the runs recorded as running."""
        query = select(CronRun.container).where(
            CronRun.state == CronState.RUNNING, col(CronRun.container).is_not(None)
        )
        with self._session() as session:
            return [name for name in session.exec(query) if name is not None]

    def interrupt_unfinished(self) -> int:
        """The runs recorded as running, ended as interrupted: at the daemon's stop, and at
        its start those a daemon that died left (their containers are orphans then)."""
        with self._session() as session:
            done = session.exec(
                update(CronRun)
                .where(col(CronRun.state) == CronState.RUNNING)
                .values(
                    state=CronState.INTERRUPTED,
                    detail="the daemon stopped while it ran",
                    ended_at=now(),
                )
            )
            session.commit()
            return int(done.rowcount or 0)

    def recorded(self, app: App, name: str, scheduled_at: float) -> bool:
        with self._session() as session:
            query = select(CronRun.id).where(
                CronRun.app_id == app.pk,
                CronRun.name == name,
                CronRun.scheduled_at == scheduled_at,
            )
            return session.exec(query).first() is not None

    def latest(self, app: App, name: str) -> CronRun | None:
        """The entry's newest recorded time."""
        query = (
            select(CronRun)
            .where(CronRun.app_id == app.pk, CronRun.name == name)
            .order_by(col(CronRun.scheduled_at).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def of(self, app: App, name: str | None = None, limit: int = 100) -> list[CronRun]:
        """The app's runs (of one entry, when named), newest first."""
        query = select(CronRun).where(CronRun.app_id == app.pk)
        if name is not None:
            query = query.where(CronRun.name == name)
        query = query.order_by(col(CronRun.scheduled_at).desc(), col(CronRun.id).desc())
        with self._session() as session:
            return list(session.exec(query.limit(limit)))
