"""What a one-off run may be asked to do: the checks before anything is held or started."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidInput, TooLarge
from pipeline.runs.asked import MAX_ARGUMENTS, MAX_COMMAND_BYTES, checked
from pipeline.runtime import Terminal

MOST = 3600.0


def test_a_command_runs_as_given_with_the_daemons_timeout() -> None:
    asked = checked(["python", "manage.py", "migrate"], most_seconds=MOST)
    assert asked.command == ("python", "manage.py", "migrate")
    assert (asked.stdin, asked.terminal, asked.timeout) == (False, None, MOST)
    assert asked.shown == "python manage.py migrate"


def test_a_terminal_has_its_size_or_80x24_and_brings_stdin() -> None:
    assert checked(["sh"], tty=True, size=(132, 43), most_seconds=MOST).terminal == Terminal(
        132, 43
    )
    asked = checked(["sh"], tty=True, most_seconds=MOST)
    assert asked.terminal == Terminal(80, 24) and asked.stdin and asked.tty
    assert checked(["sh"], size=(132, 43), most_seconds=MOST).terminal is None


@pytest.mark.parametrize(
    ("command", "words"),
    [([], "empty command"), ([""], "empty command"), (["a\x00b"], "NUL"), (["\udc80"], "not text")],
)
def test_bad_commands_are_refused_saying_why(command: list[str], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        checked(command, most_seconds=MOST)


def test_oversized_commands_are_too_large() -> None:
    with pytest.raises(TooLarge, match="arguments, over the limit"):
        checked(["x"] * (MAX_ARGUMENTS + 1), most_seconds=MOST)
    with pytest.raises(TooLarge, match="bytes, over the limit of 65,536: pass long input on stdin"):
        checked(["echo", "é" * (MAX_COMMAND_BYTES // 2)], most_seconds=MOST)
    assert checked(["x" * (MAX_COMMAND_BYTES - 1)], most_seconds=MOST)


@pytest.mark.parametrize("timeout", [0.0, -1.0, MOST + 1, float("nan"), float("inf")])
def test_a_timeout_is_more_than_nothing_and_at_most_the_daemons(timeout: float) -> None:
    with pytest.raises(InvalidInput, match="--run-timeout"):
        checked(["true"], timeout=timeout, most_seconds=MOST)


def test_a_long_command_is_shortened_where_a_message_names_it() -> None:
    shown = checked(["echo", "y" * 200], most_seconds=MOST).shown
    assert len(shown) == 80 and shown.endswith("...") and shown.startswith("echo yyy")
