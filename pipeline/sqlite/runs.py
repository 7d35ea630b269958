"""One-off runs, as they are asked for, start and end; the newest KEPT of each app are kept."""

from __future__ import annotations

from sqlmodel import col, delete, select, update

from pipeline.errors import NotFound
from pipeline.sqlite.models import App, Run, RunState, now
from pipeline.sqlite.records import Records

KEPT = 1000  # per app: a run from cron every minute would otherwise grow the file for good
UNFINISHED = (RunState.PENDING, RunState.RUNNING)


class Runs(Records):
    def ask(self, app: App, release: int, who: str, command: list[str], tty: bool) -> Run:
        """Record a run asked for (pending), and forget the app's runs past the newest KEPT."""
        with self._session() as session:
            run = Run(
                app_id=app.pk,
                release=release,
                who=who,
                command=command,
                tty=tty,
                state=RunState.PENDING,
            )
            session.add(run)
            session.flush()
            kept = (
                select(Run.id)
                .where(Run.app_id == app.pk)
                .order_by(col(Run.id).desc())
                .limit(KEPT)
                .scalar_subquery()
            )
            session.exec(delete(Run).where(col(Run.app_id) == app.pk, col(Run.id).not_in(kept)))
            session.commit()
            return run

    def started(self, run_id: int, container: str) -> None:
        with self._session() as session:
            session.exec(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.state) == RunState.PENDING)
                .values(state=RunState.RUNNING, container=container, started_at=now())
            )
            session.commit()

    def ended(
        self, run_id: int, state: RunState, exit_code: int | None = None, detail: str | None = None
    ) -> None:
        """A run that has not ended yet ends in `state`; one already ended keeps its end."""
        with self._session() as session:
            session.exec(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.state).in_(UNFINISHED))
                .values(state=state, exit_code=exit_code, detail=detail, ended_at=now())
            )
            session.commit()

    def interrupt_unfinished(self) -> int:
        """At start: the runs the last daemon left unfinished; their containers are orphans."""
        with self._session() as session:
            done = session.exec(
                update(Run)
                .where(col(Run.state).in_(UNFINISHED))
                .values(
                    state=RunState.INTERRUPTED,
                    detail="the daemon stopped while it ran",
                    ended_at=now(),
                )
            )
            session.commit()
            return int(done.rowcount or 0)

    def get(self, app: App, run_id: int) -> Run:
        with self._session() as session:
            run = session.get(Run, run_id)
            if run is None or run.app_id != app.pk:
                raise NotFound(f"app {app.name!r} has no run {run_id}")
            return run

    def of(self, app: App, limit: int = 100) -> list[Run]:
        """The app's runs, newest first."""
        query = select(Run).where(Run.app_id == app.pk).order_by(col(Run.id).desc()).limit(limit)
        with self._session() as session:
            return list(session.exec(query))
