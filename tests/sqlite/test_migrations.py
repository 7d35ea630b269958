"""The schema Alembic builds is the schema the models describe, and it is built only once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Index, Table, UniqueConstraint, inspect, text
from sqlalchemy.dialects import sqlite
from sqlmodel import SQLModel

import migrations
from pipeline.errors import MigrationFailed
from pipeline.sqlite.schema import current_revision, head_revision, migrate, migrate_in_child
from pipeline.sqlite.store import BUSY_SECONDS, Store, make_engine

Columns = tuple[str, ...]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'temps.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def model_tables() -> dict[str, Table]:
    return dict(SQLModel.metadata.tables)


def model_uniques(table: Table) -> set[Columns]:
    """Every column set the models declare unique, however it is declared."""
    found = {
        tuple(column.name for column in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    found |= {(column.name,) for column in table.columns if column.unique}
    found |= {
        tuple(column.name for column in index.columns)
        for index in table.indexes
        if isinstance(index, Index) and index.unique
    }
    return found


def db_uniques(engine: Engine, name: str) -> set[Columns]:
    inspector = inspect(engine)
    found = {
        tuple(str(c) for c in u["column_names"]) for u in inspector.get_unique_constraints(name)
    }
    found |= {
        tuple(str(c) for c in i["column_names"]) for i in inspector.get_indexes(name) if i["unique"]
    }
    return found


def model_indexes(table: Table) -> set[tuple[Columns, bool]]:
    return {(tuple(column.name for column in i.columns), bool(i.unique)) for i in table.indexes}


def db_indexes(engine: Engine, name: str) -> set[tuple[Columns, bool]]:
    return {
        (tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
        for i in inspect(engine).get_indexes(name)
    }


def schema_sql(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        )
        return [tuple(row) for row in rows]


def test_the_migrated_database_has_exactly_the_model_tables(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(model_tables())


@pytest.mark.parametrize("name", sorted(SQLModel.metadata.tables))
def test_columns_and_their_nullability_match_the_models(engine: Engine, name: str) -> None:
    table = model_tables()[name]
    expected = {column.name: column.nullable for column in table.columns}
    actual = {column["name"]: column["nullable"] for column in inspect(engine).get_columns(name)}
    assert actual == expected


@pytest.mark.parametrize("name", sorted(SQLModel.metadata.tables))
def test_column_types_match_the_models(engine: Engine, name: str) -> None:
    table = model_tables()[name]
    dialect = sqlite.dialect()
    expected = {column.name: column.type.compile(dialect) for column in table.columns}
    actual = {
        column["name"]: column["type"].compile(dialect)
        for column in inspect(engine).get_columns(name)
    }
    assert actual == expected


@pytest.mark.parametrize("name", sorted(SQLModel.metadata.tables))
def test_primary_and_foreign_keys_match_the_models(engine: Engine, name: str) -> None:
    table = model_tables()[name]
    inspector = inspect(engine)
    assert inspector.get_pk_constraint(name)["constrained_columns"] == [
        column.name for column in table.primary_key.columns
    ]
    expected = {
        (key.parent.name, key.column.table.name, key.column.name) for key in table.foreign_keys
    }
    actual = {
        (local, fk["referred_table"], remote)
        for fk in inspector.get_foreign_keys(name)
        for local, remote in zip(fk["constrained_columns"], fk["referred_columns"], strict=True)
    }
    assert actual == expected


@pytest.mark.parametrize("name", sorted(SQLModel.metadata.tables))
def test_unique_column_sets_match_the_models(engine: Engine, name: str) -> None:
    assert db_uniques(engine, name) == model_uniques(model_tables()[name])


@pytest.mark.parametrize("name", sorted(SQLModel.metadata.tables))
def test_indexes_match_the_models(engine: Engine, name: str) -> None:
    assert db_indexes(engine, name) == model_indexes(model_tables()[name])


def test_the_uniqueness_the_store_relies_on_is_there(engine: Engine) -> None:
    assert ("name",) in db_uniques(engine, "apps")
    assert ("app_id", "number") in db_uniques(engine, "releases")
    assert ("token_hash",) in db_uniques(engine, "tokens")


def test_alembic_sees_no_difference_between_database_and_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrating_twice_changes_nothing(db_url: str, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO apps (name, created_at) VALUES ('shop', 1.0)"))
    before = schema_sql(engine)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    migrate(db_url)
    assert schema_sql(engine) == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == version
        assert connection.execute(text("SELECT name FROM apps")).all() == [("shop",)]
    assert len(version) == 1


def test_the_database_is_in_wal_mode(db_url: str, engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == BUSY_SECONDS * 1000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        # NORMAL (1): commits reach the disk at checkpoints and through Store.make_durable.
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1
    # WAL is a property of the file: a plain connection sees it too.
    path = db_url.removeprefix("sqlite:///")
    plain = sqlite3.connect(path)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()


def test_the_child_process_migrates_and_a_broken_database_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    migrate_in_child(f"sqlite:///{good}")
    with sqlite3.connect(good) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"apps", "releases", "alembic_version"} <= tables

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database, " * 200)
    with pytest.raises(MigrationFailed) as caught:
        migrate_in_child(f"sqlite:///{broken}")
    assert "database migration failed" in str(caught.value)
    assert "not a database" in str(caught.value)
    assert broken.read_bytes().startswith(b"this is not"), "the broken file was changed"


def test_a_database_at_the_newest_revision_starts_no_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "temps.db"
    assert current_revision(db) is None
    migrate(f"sqlite:///{db}")
    assert current_revision(db) == head_revision() == "0013"

    def no_child(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a child was started for a database at head: {args}")

    monkeypatch.setattr(subprocess, "run", no_child)
    migrate_in_child(f"sqlite:///{db}")

    monkeypatch.undo()
    older = tmp_path / "older.db"
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{older}")
    command.upgrade(config, "0004")
    assert current_revision(older) == "0004"
    migrate_in_child(f"sqlite:///{older}")
    assert current_revision(older) == "0013"


def test_make_durable_syncs_the_log_that_holds_the_commits(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(engine)
    app = store.create_app("durable")
    store.create_release(app, source="push", commit="a" * 40)
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
    assert wal.stat().st_size > 0, "the commits are not in the write-ahead log"
    synced: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store.make_durable()
    assert synced == [wal]
    # A plain reader of the file sees the release the log holds.
    plain = sqlite3.connect(wal.with_name("temps.db"))
    try:
        assert plain.execute("SELECT count(*) FROM releases").fetchone() == (1,)
    finally:
        plain.close()


def test_make_durable_without_a_log_file_does_nothing(tmp_path: Path) -> None:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'never-written.db'}"))
    store.make_durable()  # no -wal file exists: nothing to sync, no error
    assert not (tmp_path / "never-written.db-wal").exists()


def test_the_declared_head_is_the_one_alembic_reads_from_the_version_files() -> None:
    from alembic.script import ScriptDirectory

    import migrations

    scripts = ScriptDirectory(str(Path(migrations.__file__).parent))
    assert scripts.get_heads() == [migrations.HEAD] == [head_revision()]
