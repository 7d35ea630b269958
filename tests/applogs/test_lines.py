"""An app's log lines as the tail handles them: the engine's frames joined into lines, its
times, where a follower takes a log up again, `--since`, and which container is `web.2`.
Pure logic, beside the end-to-end tests in tests/e2e/test_app_logs.py."""

from __future__ import annotations

import pytest

from pipeline.app.config import parse_config
from pipeline.applogs.lines import AppLine, Cursor, Label, Notice, Resumed, since_ns, stamp
from pipeline.applogs.sources import labels_of
from pipeline.docker.logs import MAX_LINE_BYTES, lines_of, stamp_ns
from pipeline.errors import InvalidInput
from pipeline.release.records import SlotRecord
from pipeline.runtime import Instance, LogLine, Slot
from pipeline.sqlite.models import Release

NOON = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z


def test_the_engines_times_are_read_to_the_nanosecond() -> None:
    assert stamp_ns(b"2024-05-01T12:00:00.123456789Z") == NOON + 123_456_789
    assert stamp_ns(b"2024-05-01T12:00:00.5Z") == NOON + 500_000_000
    assert stamp_ns(b"2024-05-01T12:00:00Z") == NOON
    for junk in (b"", b"junk", b"2024-05-01 12:00:00Z", b"2024-05-01T12:00:00.x1Z", b"\xff"):
        assert stamp_ns(junk) == 0, junk


def test_frames_become_lines_and_the_parts_of_a_long_line_are_joined() -> None:
    frames = [
        b"2024-05-01T12:00:00.1Z one\n",
        b"2024-05-01T12:00:00.2Z \xff\xfe not utf-8\n",
        # A long line's parts share its time; Docker 20.10's local driver drops the last
        # part's newline, so a frame of another time ends it.
        b"2024-05-01T12:00:00.3Z aaa",
        b"2024-05-01T12:00:00.3Z bbb",
        b"2024-05-01T12:00:00.4Z two\n",
        b"2024-05-01T12:00:00.5Z ccc",
        b"2024-05-01T12:00:00.5Z ddd\n",
        b"2024-05-01T12:00:00.6Z no newline at the end",
    ]
    assert [(line.at - NOON, line.text) for line in lines_of(iter(frames))] == [
        (100_000_000, b"one"),
        (200_000_000, b"\xff\xfe not utf-8"),
        (300_000_000, b"aaabbb"),
        (400_000_000, b"two"),
        (500_000_000, b"cccddd"),
        (600_000_000, b"no newline at the end"),
    ]


def test_a_line_past_the_most_joined_comes_out_in_pieces() -> None:
    part = b"x" * (MAX_LINE_BYTES // 2)
    frames = [b"2024-05-01T12:00:00.1Z " + part] * 3 + [b"2024-05-01T12:00:00.1Z end\n"]
    assert [len(line.text) for line in lines_of(iter(frames))] == [MAX_LINE_BYTES, len(part) + 3]


def test_a_line_reads_with_its_time_process_instance_and_release() -> None:
    label = Label("worker", 2, 7, "temps-demo-v7-worker-1-abcd1234")
    line = AppLine(label, LogLine(NOON + 123_456_789, b"\xff done"))
    assert line.text() == b"2024-05-01T12:00:00.123456Z worker.2 v7: \xff done\n"
    assert (
        Notice(NOON, "no container runs").text()
        == b"2024-05-01T12:00:00.000000Z temps: no container runs\n"
    )
    assert stamp(NOON + 999_999_999) == "2024-05-01T12:00:00.999999Z"


def test_a_log_taken_up_again_shows_no_line_twice_and_skips_none() -> None:
    """The engine's `since` includes its own instant: lines at the cursor's time that were
    shown are skipped, a line of the same time that was not is shown."""
    first = [LogLine(NOON + 1, b"a"), LogLine(NOON + 2, b"b"), LogLine(NOON + 2, b"c")]
    read = Resumed(Cursor())
    assert [line.text for line in first if read.admits(line)] == [b"a", b"b", b"c"]
    assert read.cursor == Cursor(NOON + 2, 2)
    # Taken up again from NOON + 2: the engine sends b and c again, then what came next.
    again = [*first[1:], LogLine(NOON + 2, b"d"), LogLine(NOON + 3, b"e")]
    read = Resumed(read.cursor)
    assert [line.text for line in again if read.admits(line)] == [b"d", b"e"]
    assert read.cursor == Cursor(NOON + 3, 1)


def test_a_cursor_never_goes_back() -> None:
    """stdout and stderr are stamped apart: a line of one may come a hair before the other."""
    cursor = Cursor(NOON + 5, 1).after(LogLine(NOON + 4, b"late"))
    assert cursor == Cursor(NOON + 5, 1)


def test_since_takes_a_duration_back_from_now_or_a_time() -> None:
    now = NOON / 1e9
    assert since_ns("10m", now) == NOON - 600 * 10**9
    assert since_ns("90s", now) == NOON - 90 * 10**9
    assert since_ns("2h", now) == NOON - 7200 * 10**9
    assert since_ns("1d", now) == NOON - 86400 * 10**9
    assert since_ns("2024-05-01T12:00:00Z", now) == NOON
    assert since_ns("2024-05-01T14:00:00+02:00", now) == NOON


@pytest.mark.parametrize("text", ["", "10", "10y", "-5m", "yesterday", "2024-05-01T12:00:00"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InvalidInput, match="since"):
        since_ns(text)


def test_containers_are_named_by_their_place_in_the_release() -> None:
    web = Slot((Instance("d-v3", 1001), Instance("d-v3-web2", 1002), Instance("d-v3-web3", 1003)))
    release = Release(
        id=9,
        app_id=1,
        number=3,
        commit="a" * 40,
        source="push",
        state="live",
        config=parse_config({"processes": {"web": "httpd", "worker": "sleep 1000"}}),
        formation={"web": 3, "worker": 2},
        slot=SlotRecord.of(web).with_workers({"worker": ["d-v3-worker", "d-v3-worker-2"]}),
    )
    assert [(str(label), label.release, label.container) for label in labels_of(release)] == [
        ("web.1", 3, "d-v3"),
        ("web.2", 3, "d-v3-web2"),
        ("web.3", 3, "d-v3-web3"),
        ("worker.1", 3, "d-v3-worker"),
        ("worker.2", 3, "d-v3-worker-2"),
    ]
