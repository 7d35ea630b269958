"""Schema upgrades with Alembic, run at start in a child process.

Alembic pulls in Mako and SQLAlchemy's DDL dialects: about 20 MiB of memory and a third of
the daemon's import time, which the daemon would carry for its whole life to use once.
The child runs this module and exits; the daemon only waits for it. A daemon restarted on a
database already at the newest revision (read with sqlite3, the revisions from the version
files) starts no child at all: a restart is the moment apps wait for the daemon.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import migrations  # the package alone, for its path: Alembic is imported only to migrate
from pipeline.errors import MigrationFailed

MIGRATION_TIMEOUT = 600


def migrate(db_url: str) -> None:
    """Upgrade the database at `db_url` to the newest revision, in this process."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
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


def head_revision() -> str | None:
    """The one revision no other version file builds on; None when that is not clear-cut."""
    revisions, bases = set(), set()
    for path in (Path(migrations.__file__).parent / "versions").glob("*.py"):
        text = path.read_text()
        revisions.update(re.findall(r'^revision = "([^"]+)"$', text, re.MULTILINE))
        bases.update(re.findall(r'^down_revision = "([^"]+)"$', text, re.MULTILINE))
    heads = revisions - bases
    return heads.pop() if len(heads) == 1 else None


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
