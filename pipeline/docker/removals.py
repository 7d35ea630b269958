"""Image removals wait while a build of this daemon runs.

Docker's classic builder takes a step from its cache by the ID of the layer that step made
before, and builds the next step on that layer a moment later. Removing an image removes
its untagged parents that no other image needs, and a layer a build has just taken from the
cache is one of them until its next step exists: that build then fails with `unable to find
image` (three apps of one stack, each pruning its old images after its deploys, failed each
other's builds twice in 300 operations of bench/soak.py). One app's housekeeping must not
fail another app's push, so a removal asked for while a build runs is held, and done when
the last running build ends; one asked for while none runs is done at once. A build that
starts waits for a removal under way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

from pipeline.errors import TempsError

log = structlog.get_logger()

Removal = Callable[[], None]


class HeldRemovals:
    """The builds that run now, and the removals waiting for them to end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._builds = 0
        self._removing = False
        self._held: list[Removal] = []

    @contextmanager
    def building(self) -> Iterator[None]:
        """While a build runs; at the end of the last one, the removals held meanwhile."""
        with self._lock:
            self._idle.wait_for(lambda: not self._removing)
            self._builds += 1
        try:
            yield
        finally:
            with self._lock:
                self._builds -= 1
                due: list[Removal] = []
                if self._builds == 0 and self._held:
                    due, self._held = self._held, []
                    self._removing = True
            if due:
                self._remove(due)

    def remove(self, removal: Removal) -> None:
        """Do `removal` now when no build runs (its errors are the caller's), else hold it
        until the running builds end."""
        with self._lock:
            if self._builds:
                self._held.append(removal)
                return
            self._idle.wait_for(lambda: not self._removing)
            self._removing = True
        try:
            removal()
        finally:
            self._done_removing()

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _remove(self, due: list[Removal]) -> None:
        """Held removals, at the end of a build: an error is logged, never the build's."""
        try:
            for removal in due:
                try:
                    removal()
                except (TempsError, OSError) as exc:  # the engine's, not the build's
                    log.warning("images.held_removal_failed", error=str(exc))
        finally:
            self._done_removing()

    def _done_removing(self) -> None:
        with self._lock:
            self._removing = False
            self._idle.notify_all()
