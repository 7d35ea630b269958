"""Backups as they run, pass or fail their verification; of an app's volumes or (app None)
of the daemon's records."""

from __future__ import annotations

from sqlmodel import col, select, update

from pipeline.errors import NotFound
from pipeline.sqlite.models import App, Backup, BackupState, now
from pipeline.sqlite.records import Records


class Backups(Records):
    def start(self, app: App | None, destination: str) -> Backup:
        backup = Backup(
            app_id=None if app is None else app.pk,
            destination=destination,
            state=BackupState.RUNNING,
        )
        with self._session() as session:
            session.add(backup)
            session.commit()
            return backup

    def written(self, backup_id: int, manifest: str, size: int) -> None:
        self._set(backup_id, manifest=manifest, size=size)

    def ended(self, backup_id: int, state: BackupState, reason: str | None = None) -> Backup:
        return self._set(backup_id, state=state, reason=reason, ended_at=now())

    def verified(self, backup_id: int, verification: str) -> Backup:
        """What a verification found: "ok", or the first differences."""
        return self._set(backup_id, verification=verification, verified_at=now())

    def _set(self, backup_id: int, **values: object) -> Backup:
        with self._session() as session:
            session.exec(update(Backup).where(col(Backup.id) == backup_id).values(**values))
            session.commit()
            found = session.get(Backup, backup_id)
            assert found is not None
            session.refresh(found)
            return found

    def interrupt_unfinished(self) -> int:
        """At start: a backup the last daemon left running never finished."""
        with self._session() as session:
            done = session.exec(
                update(Backup)
                .where(col(Backup.state) == BackupState.RUNNING)
                .values(
                    state=BackupState.FAILED,
                    reason="the daemon stopped while it ran",
                    ended_at=now(),
                )
            )
            session.commit()
            return int(done.rowcount or 0)

    def get(self, app: App | None, backup_id: int) -> Backup:
        with self._session() as session:
            backup = session.get(Backup, backup_id)
        owner = None if app is None else app.pk
        if backup is None or backup.app_id != owner:
            whose = "the records have" if app is None else f"app {app.name!r} has"
            raise NotFound(f"{whose} no backup {backup_id}")
        return backup

    def of(self, app: App | None, limit: int = 200) -> list[Backup]:
        """The app's backups (the records' for None), newest first."""
        owner = col(Backup.app_id).is_(None) if app is None else col(Backup.app_id) == app.pk
        query = select(Backup).where(owner).order_by(col(Backup.id).desc()).limit(limit)
        with self._session() as session:
            return list(session.exec(query))

    def forget(self, backup_id: int) -> None:
        with self._session() as session:
            found = session.get(Backup, backup_id)
            if found is not None:
                session.delete(found)
                session.commit()
