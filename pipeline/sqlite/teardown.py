"""The records of an app being destroyed: the mark set on its row before anything of it is
removed, and, once everything else is gone, every row of the app's removed in one
transaction, the mark with them.

Between the two the app's records stay whole: a destroy cut short reads them again to
finish (which containers were its releases', their drain timeouts, its hosts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, select

from pipeline.errors import NotFound
from pipeline.sqlite.models import (
    App,
    Backup,
    Certificate,
    CronRun,
    Delivery,
    Domain,
    Mount,
    Release,
    ReleaseEvent,
    ReleaseLog,
    Run,
    SeriesBucket,
    SeriesMark,
    Token,
    now,
)
from pipeline.sqlite.records import Records


@dataclass(frozen=True)
class Erased:
    """What the records held of a destroyed app."""

    release_ids: tuple[int, ...]  # its releases (their events and logs went with them)
    domains: tuple[str, ...]
    tokens: tuple[str, ...]  # the names of the tokens scoped to it
    volumes: tuple[str, ...]  # the names of its mounts


class Teardown(Records):
    def mark(self, name: str, volumes: bool) -> App:
        """Mark the app as being destroyed. A second mark keeps the first's time; volumes once
        asked to go stay asked to go."""
        with self._session() as session:
            app = session.exec(select(App).where(App.name == name)).first()
            if app is None:
                raise NotFound(f"no app named {name!r}")
            if app.destroying_at is None or (volumes and not app.destroy_volumes):
                app.destroying_at = app.destroying_at or now()
                app.destroy_volumes = app.destroy_volumes or volumes
                session.add(app)
                session.commit()
            return app

    def marked(self) -> list[App]:
        """The apps a destroy was asked for and has not finished."""
        with self._session() as session:
            query = select(App).where(col(App.destroying_at).is_not(None)).order_by(col(App.id))
            return list(session.exec(query))

    def erase(self, app: App, hosts: Iterable[str]) -> Erased:
        """Every row of the app's, in one transaction: its releases with their events and
        logs, webhook deliveries, domains, mounts, one-off and cron runs, the tokens scoped to
        it, the certificate records of `hosts` (its own), then the app itself. None left:
        nothing to do."""
        with self._session() as session:
            if session.get(App, app.pk) is None:
                return Erased((), (), (), ())
            query = select(col(Release.id)).where(Release.app_id == app.pk)
            ids = tuple(i for i in session.exec(query) if i is not None)
            domains = tuple(session.exec(select(Domain.host).where(Domain.app_id == app.pk)))
            mounts = tuple(session.exec(select(Mount.name).where(Mount.app_id == app.pk)))
            tokens = tuple(session.exec(select(Token.name).where(Token.app == app.name)))
            releases = col(ReleaseLog.release_id).in_(ids)
            session.execute(delete(ReleaseLog).where(releases))
            session.execute(delete(ReleaseEvent).where(col(ReleaseEvent.release_id).in_(ids)))
            session.execute(delete(Release).where(col(Release.app_id) == app.pk))
            for kind in (Backup, Delivery, Domain, Mount, Run, CronRun, SeriesBucket, SeriesMark):
                session.execute(delete(kind).where(col(kind.app_id) == app.pk))
            session.execute(delete(Token).where(col(Token.app) == app.name))
            session.execute(delete(Certificate).where(col(Certificate.host).in_(list(hosts))))
            session.execute(delete(App).where(col(App.id) == app.pk))
            session.commit()
        return Erased(ids, domains, tokens, mounts)
