"""Bounded polling: every wait in the tests ends, with the last value seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.1
) -> T:
    """Call `probe` until `done(value)` or `timeout`; return the last value either way, so
    the caller's assertion shows what was actually there."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value
