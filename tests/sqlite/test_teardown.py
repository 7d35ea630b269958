"""The records of a destroy (pipeline.sqlite.teardown): the mark set first and kept as it
was asked, and every row of the app's gone in one go at the end, none of another app's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

import migrations
from pipeline.errors import NotFound
from pipeline.release.states import ReleaseState
from pipeline.settings import Settings
from pipeline.sqlite.models import (
    App,
    Certificate,
    CertificateSource,
    CertificateState,
    CronSource,
    Scope,
)
from pipeline.sqlite.models import ReleaseSource as Source
from pipeline.sqlite.schema import migrate
from pipeline.sqlite.store import Store
from tests.support.store import open_store

# Every table that holds rows of an app, and the column that names it (tokens name it by
# name, release events and logs through their release).
PER_APP = {
    "releases": "SELECT count(*) FROM releases WHERE app_id = :id",
    "release_events": "SELECT count(*) FROM release_events WHERE release_id IN "
    "(SELECT id FROM releases WHERE app_id = :id)",
    "release_logs": "SELECT count(*) FROM release_logs WHERE release_id IN "
    "(SELECT id FROM releases WHERE app_id = :id)",
    "deliveries": "SELECT count(*) FROM deliveries WHERE app_id = :id",
    "domains": "SELECT count(*) FROM domains WHERE app_id = :id",
    "mounts": "SELECT count(*) FROM mounts WHERE app_id = :id",
    "runs": "SELECT count(*) FROM runs WHERE app_id = :id",
    "cron_runs": "SELECT count(*) FROM cron_runs WHERE app_id = :id",
    "tokens": "SELECT count(*) FROM tokens WHERE app = :name",
    "certificates": "SELECT count(*) FROM certificates WHERE host LIKE :host",
    "apps": "SELECT count(*) FROM apps WHERE id = :id",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return settings


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


def populated(store: Store, name: str) -> App:
    """An app with a row in every table that can hold one of its own."""
    app = store.create_app(name)
    for number in (1, 2):
        release = store.create_release(app, source=Source.PUSH, commit=f"{number}" * 40)
        store.append_log(release.pk, [f"-----> {name} v{number}"])
    store.deliveries.claim(app, "github", f"{name}-delivery", "push")
    store.domains.add(app, f"www.{name}.example")
    store.mounts.add(app, "data", "/data")
    store.runs.ask(app, 1, "admin", ["python", "manage.py", "migrate"], tty=False)
    store.cron.claim(app, "report", 60.0, CronSource.SCHEDULE, False, 1, "make report")
    store.add_token(f"{name}-ci", f"secret-{name}", Scope.DEPLOY, name)
    for host in (f"{name}.localhost", f"www.{name}.example"):
        store.certificates.record(
            Certificate(host=host, source=CertificateSource.ACME, state=CertificateState.PENDING)
        )
    return app


def rows(settings: Settings, app: App) -> dict[str, int]:
    with sqlite3.connect(settings.db_path) as records:
        found = {}
        for table, query in PER_APP.items():
            values = {"id": app.pk, "name": app.name, "host": f"%{app.name}%"}
            found[table] = records.execute(query, values).fetchone()[0]
        return found


def test_the_mark_is_set_once_and_volumes_asked_for_stay_asked_for(store: Store) -> None:
    store.create_app("doomed")
    first = store.teardown.mark("doomed", volumes=False)
    assert first.destroying and first.destroying_at is not None and not first.destroy_volumes
    again = store.teardown.mark("doomed", volumes=True)
    assert (again.destroying_at, again.destroy_volumes) == (first.destroying_at, True)
    kept = store.teardown.mark("doomed", volumes=False)
    assert (kept.destroying_at, kept.destroy_volumes) == (first.destroying_at, True)
    assert [app.name for app in store.teardown.marked()] == ["doomed"]


def test_an_unknown_app_cannot_be_marked(store: Store) -> None:
    with pytest.raises(NotFound, match="no app named 'ghost'"):
        store.teardown.mark("ghost", volumes=False)
    assert store.teardown.marked() == []


def test_erase_removes_every_row_of_the_app_and_none_of_another(
    settings: Settings, store: Store
) -> None:
    doomed, other = populated(store, "doomed"), populated(store, "other")
    before = rows(settings, other)
    assert all(rows(settings, doomed).values()) and all(before.values())
    store.teardown.mark("doomed", volumes=False)

    erased = store.teardown.erase(doomed, ("doomed.localhost", "www.doomed.example"))

    assert rows(settings, doomed) == dict.fromkeys(PER_APP, 0)
    assert rows(settings, other) == before
    assert len(erased.release_ids) == 2
    assert (erased.domains, erased.tokens, erased.volumes) == (
        ("www.doomed.example",),
        ("doomed-ci",),
        ("data",),
    )
    assert [app.name for app in store.list_apps()] == ["other"]
    assert store.teardown.erase(doomed, ()) == type(erased)((), (), (), ())  # done already


def test_a_new_app_of_the_name_starts_with_no_release(store: Store) -> None:
    doomed = populated(store, "doomed")
    store.teardown.erase(doomed, ("doomed.localhost",))
    again = store.create_app("doomed")
    assert not again.destroying
    assert store.releases(again) == [] and store.domains.of(again) == []
    first = store.create_release(again, source=Source.PUSH, commit="3" * 40)
    assert (first.number, first.state) == (1, ReleaseState.QUEUED)
    assert store.log_lines(first.pk) == []


def test_apps_of_an_older_schema_are_not_being_destroyed(settings: Settings) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", settings.db_url)
    command.upgrade(config, "0008")
    with sqlite3.connect(settings.db_path) as records:
        records.execute(
            "INSERT INTO apps (name, created_at, env, settings, branch, https_redirect, "
            "hsts_seconds, formation, stopped) VALUES ('old', 0, '{}', '{}', 'main', 1, 0, "
            "'{}', '[]')"
        )
    migrate(settings.db_url)
    store = open_store(settings)
    old = store.get_app("old")
    assert (old.destroying, old.destroy_volumes) == (False, False)
    assert store.teardown.marked() == []
