"""What a one-off run is asked to do, checked before anything is held or started."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import InvalidInput, TooLarge
from pipeline.runtime import Terminal

# An argument vector, not a script: a long script goes on stdin (`-- sh -s < script.sh`).
MAX_ARGUMENTS = 1024
MAX_COMMAND_BYTES = 64 * 1024  # the arguments' UTF-8 bytes, one terminating NUL each
DEFAULT_TERMINAL = Terminal(cols=80, rows=24)
SHOWN_CHARACTERS = 80  # of a command, where a message names it


@dataclass(frozen=True)
class Asked:
    command: tuple[str, ...]  # run as it is (no shell), after the image's entrypoint if any
    stdin: bool  # the client sends the command's stdin
    terminal: Terminal | None  # a TTY of that size (stdin included)
    timeout: float  # seconds from its start to its kill

    @property
    def tty(self) -> bool:
        return self.terminal is not None

    @property
    def shown(self) -> str:
        """The command as a shell would take it, shortened for a message."""
        text = shlex.join(self.command)
        return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."


def checked(
    command: Sequence[str],
    *,
    stdin: bool = False,
    tty: bool = False,
    size: tuple[int | None, int | None] = (None, None),
    timeout: float | None = None,
    most_seconds: float,
) -> Asked:
    """The request as an `Asked`, or an InvalidInput (TooLarge) saying what is wrong with it.
    `size` is the terminal's (columns, rows) with `tty`; `timeout` at most `most_seconds`."""
    if not command or not command[0]:
        raise InvalidInput(
            "empty command: name the program to run, as in "
            "`temps run myapp -- python manage.py migrate`"
        )
    if len(command) > MAX_ARGUMENTS:
        raise TooLarge(
            f"the command has {len(command):,} arguments, over the limit of {MAX_ARGUMENTS:,}"
        )
    size_bytes = 0
    for argument in command:
        if "\x00" in argument:
            raise InvalidInput(
                "an argument of the command holds a NUL character: no program can take it"
            )
        try:
            size_bytes += len(argument.encode("utf-8")) + 1
        except UnicodeEncodeError:
            raise InvalidInput(
                "an argument of the command is not text (a lone surrogate)"
            ) from None
    if size_bytes > MAX_COMMAND_BYTES:
        raise TooLarge(
            f"the command is {size_bytes:,} bytes, over the limit of {MAX_COMMAND_BYTES:,}: "
            "pass long input on stdin instead (`temps run myapp -- sh -s < script.sh`)"
        )
    if timeout is None:
        timeout = most_seconds
    elif not (math.isfinite(timeout) and 0 < timeout <= most_seconds):
        raise InvalidInput(
            f"timeout must be more than 0 and at most the daemon's --run-timeout "
            f"({most_seconds:g} s), got {timeout:g}"
        )
    cols, rows = size
    terminal = Terminal(cols or DEFAULT_TERMINAL.cols, rows or DEFAULT_TERMINAL.rows)
    return Asked(tuple(command), stdin or tty, terminal if tty else None, timeout)
