"""When an entry is due: a cron expression in its time zone, read by cronsim.

cronsim: a small, typed, maintained evaluator (the one healthchecks.io checks cron jobs with)
that follows Debian cron's rules, daylight saving time included. It reads five fields, or six
with the seconds first; the `@hourly` shorthands are Vixie cron's and are expanded here, as
cronsim does not read them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FORM = (
    "a schedule is five fields (minute hour day-of-month month day-of-week), "
    "or one of " + ", ".join(SHORTHANDS)
)


class BadSchedule(ValueError):
    """A schedule or a time zone cronsim or zoneinfo cannot read; the message says why."""


def expanded(schedule: str) -> str:
    """The schedule as fields: a shorthand replaced by the fields it stands for."""
    text = schedule.strip()
    return SHORTHANDS.get(text.lower(), text)


def has_seconds(schedule: str) -> bool:
    """Six fields, the first the seconds: for tests, on a daemon started with --cron-seconds."""
    return len(expanded(schedule).split()) == 6


def check(schedule: str) -> None:
    """Raise BadSchedule unless cronsim reads the schedule (five or six fields)."""
    fields = expanded(schedule)
    if len(fields.split()) not in (5, 6):
        raise BadSchedule(f"{schedule!r} is not a schedule: {FORM}")
    try:
        next(CronSim(fields, datetime(2000, 1, 1, tzinfo=UTC)))
    except (CronSimError, StopIteration) as exc:
        raise BadSchedule(f"{schedule!r} is not a schedule ({exc}): {FORM}") from None


@functools.cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule(
            f"{name!r} is not a time zone: an IANA name such as UTC or Europe/Paris"
        ) from None


def times_after(schedule: str, timezone: str, after: float) -> Iterator[float]:
    """The scheduled times strictly after `after` (seconds since the epoch), in order."""
    start = datetime.fromtimestamp(after, zone(timezone))
    for moment in CronSim(expanded(schedule), start):
        if moment.timestamp() > after:
            yield moment.timestamp()


def next_after(schedule: str, timezone: str, after: float) -> float | None:
    """The first scheduled time after `after`; None for a schedule that never comes."""
    return next(times_after(schedule, timezone, after), None)


def due_between(schedule: str, timezone: str, after: float, until: float) -> list[float]:
    """The scheduled times in (after, until], in order."""
    due = []
    for moment in times_after(schedule, timezone, after):
        if moment > until:
            break
        due.append(moment)
    return due


def latest_until(schedule: str, timezone: str, until: float) -> float | None:
    """The last scheduled time at or before `until`."""
    # cronsim going backwards never yields its start: begin a second later.
    start = datetime.fromtimestamp(until + 1, zone(timezone))
    for moment in CronSim(expanded(schedule), start, reverse=True):
        if moment.timestamp() <= until:
            return moment.timestamp()
    return None
