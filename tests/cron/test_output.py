"""What a cron run keeps of its output, and how `temps cron` shows entries and runs."""

from __future__ import annotations

from pipeline.cron.job import LINE_CHARS, OUTPUT_LINES, Tail
from receiver.cli.cron import entry_line, run_line


def test_the_tail_keeps_the_last_lines_whatever_the_chunks() -> None:
    tail = Tail()
    for chunk in ("one\ntw", "o\nthr", "ee"):
        tail.add(chunk)
    assert tail.text() == "one\ntwo\nthree"
    for number in range(OUTPUT_LINES * 3):
        tail.add(f"line {number}\n")
    kept = tail.text().split("\n")
    assert len(kept) == OUTPUT_LINES and kept[-1] == f"line {OUTPUT_LINES * 3 - 1}"


def test_a_long_line_is_cut() -> None:
    tail = Tail()
    tail.add("x" * (LINE_CHARS * 4))
    tail.add("x" * LINE_CHARS + "\nend\n")
    assert tail.text() == "x" * LINE_CHARS + "\nend"


RUN = {
    "id": 3, "name": "report", "scheduled_at": 1_800_000_000.0, "source": "schedule",
    "state": "succeeded", "release": 4, "command": "make report", "container": None,
    "exit_code": 0, "detail": None, "output": "", "started_at": 1_800_000_000.25,
    "ended_at": 1_800_000_002.75,
}  # fmt: skip


def test_cli_lines() -> None:
    entry = {"name": "report", "schedule": "@daily", "timezone": "Europe/Paris",
             "next_run": 1_800_003_600.0, "last_run": RUN}  # fmt: skip
    line = entry_line(entry)
    assert line.startswith("report ") and "@daily (Europe/Paris)" in line
    assert "2027-01-15 09:00:00" in line and "succeeded (exit 0)" in line
    assert "never" not in entry_line({**entry, "last_run": None, "next_run": None})
    shown = run_line(RUN)
    assert "v4" in shown and "schedule" in shown and "2.5s" in shown
    assert run_line({**RUN, "state": "skipped", "exit_code": None, "started_at": None,
                     "release": None}).endswith("skipped")  # fmt: skip
