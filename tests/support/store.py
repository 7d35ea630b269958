"""A home's real SQLite store, migrated to the head revision, for tests without a daemon."""

from __future__ import annotations

from pipeline.settings import Settings
from pipeline.sqlite.schema import migrate
from pipeline.sqlite.store import Store, make_engine


def open_store(settings: Settings) -> Store:
    migrate(settings.db_url)
    return Store(make_engine(settings.db_url))
