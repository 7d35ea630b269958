"""Each app's series buckets and the marks on its graphs: added to, read by range, and
forgotten past the retention."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, delete, func, select

from pipeline.release.states import ReleaseState
from pipeline.series import histogram
from pipeline.series.buckets import Bucket, Key
from pipeline.sqlite.models import App, Release, ReleaseEvent, SeriesBucket, SeriesMark, now
from pipeline.sqlite.records import Records

# The events of a release drawn on its app's graphs: the switch to it, its flip back.
MARKED_STATES = (ReleaseState.SWITCHING, ReleaseState.FAILED)


@dataclass(frozen=True)
class ReleaseMark:
    at: float
    state: str
    number: int
    source: str
    failed_step: str | None


class SeriesRecords(Records):
    def add(self, buckets: Mapping[Key, Bucket]) -> None:
        """Add `buckets` to those stored (by app name; an app gone meanwhile is skipped)."""
        if not buckets:
            return
        with self._session() as session:
            names = {app for app, _ in buckets}
            query = select(App.name, App.id).where(col(App.name).in_(names))
            ids = {name: pk for name, pk in session.exec(query)}
            for (app, at), bucket in buckets.items():
                app_id = ids.get(app)
                if app_id is None:
                    continue
                row = session.get(SeriesBucket, (app_id, at))
                if row is None:
                    row = SeriesBucket(app_id=app_id, at=at)
                total = _bucket(row)
                total.add_bucket(bucket)
                row.ok, row.redirects, row.refused, row.failed = total.classes
                row.latency = histogram.text(total.latency)
                row.restarts = total.restarts
                session.add(row)
            session.commit()

    def buckets(self, app: App, since: float, until: float) -> list[tuple[int, Bucket]]:
        """The app's buckets that start from `since` to before `until`, oldest first. Read
        as plain rows: a day of one app's buckets as ORM objects took a third of a second."""
        query = (
            sa.select(
                col(SeriesBucket.at),
                col(SeriesBucket.ok),
                col(SeriesBucket.redirects),
                col(SeriesBucket.refused),
                col(SeriesBucket.failed),
                col(SeriesBucket.latency),
                col(SeriesBucket.restarts),
            )
            .where(
                col(SeriesBucket.app_id) == app.pk,
                col(SeriesBucket.at) >= since,
                col(SeriesBucket.at) < until,
            )
            .order_by(col(SeriesBucket.at))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            (at, Bucket([ok, redirects, refused, failed], histogram.parse(latency), restarts))
            for at, ok, redirects, refused, failed, latency, restarts in rows
        ]

    def requests_since(self, since: float) -> dict[int, list[tuple[int, int]]]:
        """Every app's requests per bucket from `since`, by app id, in one query."""
        total = (
            SeriesBucket.ok + SeriesBucket.redirects + SeriesBucket.refused + SeriesBucket.failed
        )
        query = select(SeriesBucket.app_id, SeriesBucket.at, total).where(SeriesBucket.at >= since)
        found: dict[int, list[tuple[int, int]]] = {}
        with self._session() as session:
            for app_id, at, requests in session.exec(query):
                found.setdefault(app_id, []).append((at, int(requests)))
        return found

    def mark(self, app: App, kind: str, label: str, at: float | None = None) -> None:
        with self._session() as session:
            session.add(
                SeriesMark(app_id=app.pk, at=now() if at is None else at, kind=kind, label=label)
            )
            session.commit()

    def marks(self, app: App, since: float, until: float) -> list[SeriesMark]:
        query = (
            select(SeriesMark)
            .where(SeriesMark.app_id == app.pk, SeriesMark.at >= since, SeriesMark.at < until)
            .order_by(col(SeriesMark.at))
        )
        with self._session() as session:
            return list(session.exec(query))

    def release_marks(self, app: App, since: float, until: float) -> list[ReleaseMark]:
        """The switches to the app's releases and their failures in the range, in one query."""
        query = (
            select(ReleaseEvent, Release)
            .join(Release, col(Release.id) == col(ReleaseEvent.release_id))
            .where(
                Release.app_id == app.pk,
                col(ReleaseEvent.state).in_(MARKED_STATES),
                ReleaseEvent.at >= since,
                ReleaseEvent.at < until,
            )
            .order_by(col(ReleaseEvent.at))
        )
        with self._session() as session:
            return [
                ReleaseMark(
                    event.at,
                    str(event.state),
                    release.number,
                    str(release.source),
                    release.failed_step,
                )
                for event, release in session.exec(query)
            ]

    def forget(self, before: float) -> int:
        """Every app's buckets and marks older than `before`; how many buckets went."""
        with self._session() as session:
            gone = session.exec(delete(SeriesBucket).where(col(SeriesBucket.at) < before))
            session.exec(delete(SeriesMark).where(col(SeriesMark.at) < before))
            session.commit()
            return int(gone.rowcount or 0)

    def count(self) -> int:
        with self._session() as session:
            return int(session.exec(select(func.count()).select_from(SeriesBucket)).one())


def _bucket(row: SeriesBucket) -> Bucket:
    return Bucket(
        classes=[row.ok, row.redirects, row.refused, row.failed],
        latency=histogram.parse(row.latency),
        restarts=row.restarts,
    )
