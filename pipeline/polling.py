"""Waiting on something outside temps that has no event to wait on (Traefik's API, a process
exiting, Swarm reaping a task): one loop, its interval a parameter."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(check: Callable[[], bool], timeout: float, interval: float) -> bool:
    """Call `check` every `interval` seconds until it holds (True) or `timeout` seconds have
    passed (False). It runs at least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(interval, left))
