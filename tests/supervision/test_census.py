"""The counts of running against wanted containers, and when a container that will not stay
up is tried again: pure logic, beside the end-to-end tests in tests/e2e/test_desired_state.py."""

from __future__ import annotations

from pipeline.app.config import parse_config
from pipeline.release.records import SlotRecord
from pipeline.runtime import Instance, Slot
from pipeline.sqlite.models import App, Release
from pipeline.supervision.census import ProcessCount, count, expected
from pipeline.supervision.restore import Backoff

PROCFILE_CONFIG = {"processes": {"web": "httpd", "worker": "sleep 1000", "clock": "sleep 9"}}


def live(stopped: list[str] | None = None) -> tuple[App, Release]:
    app = App(id=1, name="demo", stopped=stopped or [])
    slot = SlotRecord.of(Slot((Instance("d-v1", 1001), Instance("d-v1-web2", 1002))))
    release = Release(
        id=7,
        app_id=1,
        number=1,
        commit="a" * 40,
        source="push",
        state="live",
        config=parse_config(PROCFILE_CONFIG),
        formation={"web": 2, "worker": 2, "clock": 1},
        slot=slot.with_workers({"worker": ["d-v1-worker-1", "d-v1-worker-2"], "clock": []}),
    )
    return app, release


def test_counts_running_against_the_live_formation() -> None:
    app, release = live()
    census = count(app, release, {"d-v1", "d-v1-worker-1", "d-v1-other"})
    assert census == {
        "web": ProcessCount(wanted=2, running=1),
        "worker": ProcessCount(wanted=2, running=1),
        "clock": ProcessCount(wanted=1, running=0),
    }
    assert [c.missing for c in census.values()] == [1, 1, 1]


def test_a_type_stopped_on_purpose_is_not_missing_nor_expected() -> None:
    app, release = live(stopped=["worker"])
    census = count(app, release, {"d-v1", "d-v1-web2"})
    assert census["worker"] == ProcessCount(wanted=2, running=0, stopped=True)
    assert census["worker"].missing == 0 and census["web"].missing == 0
    assert expected(app, release) == {"web": ["d-v1", "d-v1-web2"], "clock": []}


def test_tries_back_off_doubling_to_the_longest_wait_then_start_over_after_calm() -> None:
    backoff = Backoff(first_wait=1.0, longest_wait=8.0, calm=100.0)
    now, waits = 0.0, []
    for _ in range(6):
        assert backoff.due("c", now)
        backoff.tried("c", now)
        wait = 0.0
        while not backoff.due("c", now + wait):
            wait += 0.5
        waits.append(wait)
        now += wait
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.tried("c", now + 100.0) == 1, "a quiet spell starts the count over"
    assert backoff.due("other", now), "each container has its own tries"
