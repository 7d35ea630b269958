"""Which good backups retention keeps: the newest per day, then per week."""

from __future__ import annotations

from pipeline.backups.retention import DAY, WEEK, kept

NOW = 1_000 * WEEK


def test_the_newest_of_each_day_is_kept_for_keep_daily_days() -> None:
    good = [(1, NOW - 2 * DAY - 10), (2, NOW - 2 * DAY - 5), (3, NOW - 60), (4, NOW - 30)]
    assert kept(good, keep_daily=3, keep_weekly=0, now=NOW) == {2, 4}


def test_older_ones_are_kept_one_per_week_then_none() -> None:
    good = [
        (1, NOW - 1 * DAY - 1),  # day 1
        (2, NOW - 3 * DAY),  # week 0 after the 2 days
        (3, NOW - 4 * DAY),  # same week, older
        (4, NOW - 2 * DAY - WEEK - 1),  # week 1
        (5, NOW - 2 * DAY - 3 * WEEK),  # week 3: past keep_weekly
    ]
    assert kept(good, keep_daily=2, keep_weekly=2, now=NOW) == {1, 2, 4}


def test_nothing_kept_when_nothing_is_asked() -> None:
    assert kept([(1, NOW)], keep_daily=0, keep_weekly=0, now=NOW) == set()


def test_the_newest_keep_last_are_kept_whatever_their_day() -> None:
    good = [(1, NOW - 300), (2, NOW - 200), (3, NOW - 100), (4, NOW - 30 * WEEK)]
    assert kept(good, keep_daily=1, keep_weekly=0, now=NOW, keep_last=2) == {2, 3}
    assert kept(good, keep_daily=0, keep_weekly=0, now=NOW, keep_last=10) == {1, 2, 3, 4}
