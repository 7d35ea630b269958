"""A database another process holds locked: a push waits for it up to the busy budget
(`--records-busy-seconds`), then is refused with the cause and nothing half-written; the API
answers 503 with Retry-After; serving never waits on the records.

The lock is real: a second SQLite connection to the daemon's `temps.db` holding
`BEGIN EXCLUSIVE`, as a backup tool or an operator's `sqlite3` shell would.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.apprepo import git_push, make_app_repo, remote_main
from tests.support.checks import assert_serves, push_ok, rejection, release_numbers
from tests.support.daemon import TempsDaemon

pytestmark = pytest.mark.docker

BUSY_SECONDS = 3.0
TEMPS_SERVE_ARGS = ["--records-busy-seconds", str(BUSY_SECONDS)]
BUSY = "the records are busy (database locked by another process)"


@contextmanager
def locked(daemon: TempsDaemon, seconds: float) -> Iterator[threading.Event]:
    """Another process's write lock on the daemon's database, held for `seconds` from when
    the block starts; the event is set when it was let go."""
    taken, released = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(daemon.home / "temps.db", isolation_level=None, timeout=30)
        try:
            other.execute("BEGIN EXCLUSIVE")
            taken.set()
            time.sleep(seconds)
            other.execute("ROLLBACK")
        finally:
            other.close()
            released.set()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(30), "the lock was never taken"
    try:
        yield released
    finally:
        holder.join(seconds + 30)


def test_a_push_past_the_busy_budget_is_refused_with_the_cause_and_nothing_written(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "busy-refused", tmp_path / "repo"
    daemon.create_app(app)
    first = push_ok(daemon, repo, app, "v1")
    make_app_repo(repo, "v2")

    with locked(daemon, BUSY_SECONDS * 4) as released:
        code, output = git_push(repo, daemon.git_url(app))
        refused_while_locked = not released.is_set()
        assert_serves(daemon, app, "v1", 1)  # serving and reads go on meanwhile
        with daemon.client() as api:
            answer = api.post("/api/apps", json={"name": "busy-new"})

    assert code != 0, output
    assert BUSY in (rejection(output) or ""), output
    assert refused_while_locked, "the push waited for the lock to go instead of its budget"
    assert answer.status_code == 503, answer.text
    assert answer.headers.get("retry-after") == "5", answer.headers
    assert "records are busy" in answer.json()["detail"], answer.text
    # Nothing half-written: no release for the refused push, main where it was, no app.
    assert release_numbers(daemon, app) == [1]
    assert remote_main(daemon.git_url(app)) == first
    assert daemon.healthz().status_code == 200
    with daemon.client() as api:
        assert api.get("/api/apps/busy-new").status_code == 404
    # Once the lock is gone the same push deploys.
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, output
    assert_serves(daemon, app, "v2", 2)


def test_a_push_inside_the_busy_budget_waits_for_the_lock_and_deploys(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "busy-waits", tmp_path / "repo"
    daemon.create_app(app)
    push_ok(daemon, repo, app, "v1")
    commit = make_app_repo(repo, "v2")

    with locked(daemon, BUSY_SECONDS / 3):
        code, output = git_push(repo, daemon.git_url(app))

    assert code == 0, output
    assert_serves(daemon, app, "v2", 2)
    assert release_numbers(daemon, app) == [1, 2]
    assert remote_main(daemon.git_url(app)) == commit
