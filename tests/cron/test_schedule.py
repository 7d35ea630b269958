"""Schedule arithmetic and `[[cron]]` errors that name the entry."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.app.config import AppConfig, load_toml
from pipeline.cron import schedule
from pipeline.errors import BuildFailed, InvalidInput
from pipeline.steps.build import refuse_seconds


def at(*parts: int, tz: str = "UTC") -> float:
    return datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def test_five_fields_and_shorthands() -> None:
    noon = at(2026, 3, 4, 12, 0, 30)
    assert schedule.next_after("*/15 * * * *", "UTC", noon) == at(2026, 3, 4, 12, 15)
    assert schedule.next_after("@hourly", "UTC", noon) == at(2026, 3, 4, 13, 0)
    assert schedule.next_after("@daily", "UTC", noon) == at(2026, 3, 5, 0, 0)
    assert schedule.latest_until("@hourly", "UTC", noon) == at(2026, 3, 4, 12, 0)


def test_a_time_is_never_its_own_next() -> None:
    exact = at(2026, 3, 4, 12, 0)
    assert schedule.next_after("0 * * * *", "UTC", exact) == at(2026, 3, 4, 13, 0)
    assert schedule.latest_until("0 * * * *", "UTC", exact) == exact


def test_due_between_is_every_time_in_the_window() -> None:
    start = at(2026, 3, 4, 12, 0)
    due = schedule.due_between("*/10 * * * *", "UTC", start, start + 3600)
    assert due == [start + 600 * n for n in range(1, 7)]
    assert schedule.due_between("*/10 * * * *", "UTC", start, start + 599) == []


def test_seconds_come_first_in_six_fields() -> None:
    start = at(2026, 3, 4, 12, 0, 1)
    assert schedule.has_seconds("*/5 * * * * *")
    assert not schedule.has_seconds("@hourly")
    assert schedule.next_after("*/5 * * * * *", "UTC", start) == at(2026, 3, 4, 12, 0, 5)


def test_the_time_zone_sets_the_hours() -> None:
    start = datetime(2026, 7, 1, 0, 0, tzinfo=UTC).timestamp()
    paris = schedule.next_after("0 9 * * *", "Europe/Paris", start)
    assert paris == at(2026, 7, 1, 9, 0, tz="Europe/Paris")
    assert paris == at(2026, 7, 1, 7, 0)  # summer time: UTC+2


ENTRY = '[[cron]]\nname = "report"\nschedule = "{schedule}"\ncommand = "make report"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            ENTRY.format(schedule="61 * * * *"),
            "temps.toml: cron[0].schedule: entry 'report': '61 * * * *' is not a schedule",
        ),
        (
            ENTRY.format(schedule="every hour"),
            "temps.toml: cron[0].schedule: entry 'report': 'every hour' is not a schedule",
        ),
        (
            ENTRY.format(schedule="@hourly") + 'timezone = "Mars/Olympus"\n',
            "temps.toml: cron[0].timezone: entry 'report': 'Mars/Olympus' is not a time zone",
        ),
        (
            ENTRY.format(schedule="@hourly") + ENTRY.format(schedule="@daily"),
            "temps.toml: cron: more than one entry is named 'report'",
        ),
        ('[[cron]]\nname = "x"\ncommand = "y"\n', "temps.toml: cron[0].schedule is required"),
        (
            ENTRY.format(schedule="@hourly") + "timeout = 0\n",
            "temps.toml: cron[0].timeout must be between 1 and 86400, got 0",
        ),
        (
            ENTRY.format(schedule="@hourly") + 'overlap = "queue"\n',
            "temps.toml: cron[0].overlap must be one of skip, allow, got 'queue'",
        ),
        (ENTRY.format(schedule="@hourly") + "every = 1\n", "temps.toml: unknown key cron[0].every"),
        (
            ENTRY.format(schedule="@hourly").replace("report", "Report"),
            "temps.toml: cron[0].name: a job's name is lowercase letters",
        ),
        (
            ENTRY.format(schedule="@hourly") + "catch_up = 1\n",
            "temps.toml: cron[0].catch_up must be true or false, got 1",
        ),
    ],
)
def test_a_bad_entry_is_named(toml: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_toml(toml)
    assert str(caught.value).startswith(message), str(caught.value)


def test_an_entry_and_its_defaults() -> None:
    config = load_toml(ENTRY.format(schedule="@hourly"))
    (entry,) = config.cron
    assert (entry.timezone, entry.timeout, entry.overlap, entry.catch_up) == (
        "UTC",
        3600.0,
        "skip",
        False,
    )
    assert AppConfig.from_dict(config.to_dict()) == config


def test_seconds_need_the_daemon_setting() -> None:
    config = load_toml(ENTRY.format(schedule="*/5 * * * * *"))
    refuse_seconds(config, allowed=True)
    with pytest.raises(BuildFailed, match=r"cron\[0\]\.schedule: entry 'report'.*--cron-seconds"):
        refuse_seconds(config, allowed=False)


def test_a_backup_schedule_is_checked_and_its_job_name_is_reserved() -> None:
    assert load_toml('[backup]\nschedule = "@daily"\n').backup.schedule == "@daily"
    with pytest.raises(InvalidInput, match=r"backup\.schedule: '61 \* \* \* \*' is not"):
        load_toml('[backup]\nschedule = "61 * * * *"\n')
    with pytest.raises(InvalidInput, match=r"backup\.timezone: 'Mars/Base'"):
        load_toml('[backup]\nschedule = "@daily"\ntimezone = "Mars/Base"\n')
    with pytest.raises(InvalidInput, match="'backup' is temps' own job"):
        load_toml('[[cron]]\nname = "backup"\nschedule = "@daily"\ncommand = "true"\n')
