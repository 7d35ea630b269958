"""A store on a real SQLite file, migrated by Alembic, for the record modules' tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.sqlite.store import Store
from tests.support.store import store_at


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with store_at(tmp_path / "temps.db") as store:
        yield store
