"""Cron runs: a scheduled time is claimed once, across threads; a run still going makes the
next time skipped; a daemon's start interrupts what the last one left running."""

from __future__ import annotations

import threading
from pathlib import Path

from pipeline.settings import Settings
from pipeline.sqlite.models import CronSource, CronState
from pipeline.sqlite.store import Store
from tests.support.store import open_store


def store_in(tmp_path: Path) -> Store:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return open_store(settings)


def test_a_time_is_claimed_once_whoever_asks(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    app = store.create_app("shop")
    claims: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        claims.append(store.cron.claim(app, "report", 120.0, CronSource.SCHEDULE, True, 1, "x"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([c for c in claims if c is not None]) == 1
    assert [run.scheduled_at for run in store.cron.of(app)] == [120.0]


def test_a_time_due_while_the_last_runs_is_skipped_unless_overlap(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    app = store.create_app("shop")
    first = store.cron.claim(app, "report", 60.0, CronSource.SCHEDULE, False, 1, "x")
    assert first is not None and first.state == CronState.RUNNING
    second = store.cron.claim(app, "report", 120.0, CronSource.SCHEDULE, False, 1, "x")
    assert second is not None and second.state == CronState.SKIPPED
    third = store.cron.claim(app, "report", 180.0, CronSource.SCHEDULE, True, 1, "x")
    assert third is not None and third.state == CronState.RUNNING
    other = store.cron.claim(app, "other", 180.0, CronSource.SCHEDULE, False, 1, "y")
    assert other is not None and other.state == CronState.RUNNING
    assert first.id is not None
    ended = store.cron.ended(first.id, CronState.SUCCEEDED, 0, "done\n")
    assert ended is not None and (ended.state, ended.exit_code) == (CronState.SUCCEEDED, 0)
    assert store.cron.ended(first.id, CronState.FAILED, 1, "") is None  # ended once
    assert store.cron.interrupt_unfinished() == 2
    states = {(r.name, r.scheduled_at): r.state for r in store.cron.of(app)}
    assert states == {
        ("report", 60.0): CronState.SUCCEEDED,
        ("report", 120.0): CronState.SKIPPED,
        ("report", 180.0): CronState.INTERRUPTED,
        ("other", 180.0): CronState.INTERRUPTED,
    }
    latest = store.cron.latest(app, "report")
    assert latest is not None and latest.scheduled_at == 180.0
