"""Schema upgrades with Alembic, run at start in a child process.

Alembic pulls in Mako and SQLAlchemy's DDL dialects: about 20 MiB of memory and a third of
the daemon's import time, which the daemon would carry for its whole life to use once.
The child runs this module and exits; the daemon only waits for it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.errors import MigrationFailed

MIGRATION_TIMEOUT = 600


def migrate(db_url: str) -> None:
    """Upgrade the database at `db_url` to the newest revision, in this process."""
    from alembic import command
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", db_url)
    command.upgrade(config, "head")


def migrate_in_child(db_url: str) -> None:
    """The same upgrade in a child interpreter, so that Alembic never loads in the daemon."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.schema", db_url],
        capture_output=True,
        text=True,
        timeout=MIGRATION_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        raise MigrationFailed(f"database migration failed: {last}")


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
