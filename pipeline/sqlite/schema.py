"""Schema upgrades with Alembic, run at start in a child process.

An upgrade runs Alembic's environment, its DDL operations and the version scripts; the child
runs this module and exits, and the daemon only waits for it. A daemon restarted on a
database already at the newest revision starts no child at all: a restart is the moment apps
wait for the daemon. The database's revision is read with sqlite3, the newest one is
`migrations.HEAD` (which a test holds equal to what Alembic's `ScriptDirectory` reads), so
Alembic never loads in the daemon.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import migrations  # the package alone, for its path
from pipeline.errors import MigrationFailed

MIGRATION_TIMEOUT = 600
_SCRIPTS = Path(migrations.__file__).parent


def migrate(db_url: str) -> None:
    """Upgrade the database at `db_url` to the newest revision, in this process."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", db_url)
    command.upgrade(config, "head")


def migrate_in_child(db_url: str) -> None:
    """The same upgrade in a child interpreter, so that Alembic never loads in the daemon."""
    database = Path(db_url.removeprefix("sqlite:///"))
    if db_url.startswith("sqlite:///") and current_revision(database) == head_revision():
        return
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.sqlite.schema", db_url],
        capture_output=True,
        text=True,
        timeout=MIGRATION_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        raise MigrationFailed(f"database migration failed: {last}")


def head_revision() -> str:
    """The newest revision of the schema."""
    return migrations.HEAD


def current_revision(db_path: Path) -> str | None:
    """The revision the database says it is at, or None (no database, no Alembic table)."""
    if not db_path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def main(db_url: str) -> int:
    try:
        migrate(db_url)
    except Exception as exc:  # reported in one line to the daemon, which refuses to start
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        print(f"{type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
