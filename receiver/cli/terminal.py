"""The user's terminal while `temps run --tty` runs: raw, so that every key (Ctrl-C and Ctrl-D
too) goes to the remote command, told of each change of the window's size, and put back as
it was however the run ends."""

from __future__ import annotations

import contextlib
import os
import signal
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from types import FrameType

DEFAULT_SIZE = (80, 24)


def is_terminal(fd: int) -> bool:
    return os.isatty(fd)


def size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal at `fd`, or 80x24 when it is not one."""
    try:
        found = os.get_terminal_size(fd)
    except OSError:
        return DEFAULT_SIZE
    return found.columns or DEFAULT_SIZE[0], found.lines or DEFAULT_SIZE[1]


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    """The terminal at `fd` in raw mode over the block (nothing when it is not a terminal)."""
    if not is_terminal(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def resizes(fd: int, changed: Callable[[tuple[int, int]], None]) -> Iterator[None]:
    """`changed(size)` on a thread of its own after each SIGWINCH over the block: a signal
    handler runs on the main thread, between any two of its steps, where sending could wait
    on a lock that very thread holds."""
    pending = threading.Event()
    over = threading.Event()

    def handler(_signal: int, _frame: FrameType | None) -> None:
        pending.set()

    def tell() -> None:
        while True:
            pending.wait()
            if over.is_set():
                return
            pending.clear()
            changed(size(fd))

    previous = signal.signal(signal.SIGWINCH, handler)
    teller = threading.Thread(target=tell, name="resize", daemon=True)
    teller.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
        over.set()
        pending.set()
