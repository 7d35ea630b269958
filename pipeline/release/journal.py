"""A release's log: what its deploy tells the pusher, persisted, capped, followable live."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from pipeline.sqlite.store import Store

log = structlog.get_logger()

KEEP_FINISHED_IN_MEMORY = 20
STEP_PREFIX = "----->"
MAX_LINE = 4096  # characters of one log line; a build may print a line without end


@dataclass
class _Follow:
    lines: list[str] = field(default_factory=list)
    done: bool = False


@dataclass
class _Budget:
    lines: int = 0
    size: int = 0  # characters
    cut: bool = False  # the truncation marker was written


@dataclass(frozen=True)
class Chunk:
    lines: list[str]
    position: int
    done: bool


class Journal:
    def __init__(self, store: Store, max_lines: int = 10_000, max_bytes: int = 4 << 20) -> None:
        self.store = store
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._budgets: dict[int, _Budget] = {}  # what each release's log holds so far
        self._live: dict[int, _Follow] = {}
        self._changed = threading.Condition()
        # A release's log may be written from two threads at once (its deploy, and its old
        # slot stopping in the background): the count, the rows and the lines stay in step.
        self._writing = threading.Lock()

    def start(self, release_id: int) -> None:
        with self._changed:
            self._live.setdefault(release_id, _Follow())

    def write(self, release_id: int, text: str) -> None:
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        if not lines:
            return
        with self._writing:
            lines = self._within_cap(release_id, lines)
            if not lines:
                return
            try:
                self.store.append_log(release_id, lines)
            finally:
                # Followers get the lines even when the store refused them (a full disk): they
                # say why the deploy stops, and the store's error goes on to the deploy.
                self._show(release_id, lines)

    def _show(self, release_id: int, lines: list[str]) -> None:
        with self._changed:
            # A release that left memory (or was never followed) is read from the store: a
            # new entry here would show a follower a cut-off log that never ends.
            follow = self._live.get(release_id)
            if follow is not None:
                follow.lines.extend(lines)
                self._changed.notify_all()

    def _within_cap(self, release_id: int, lines: list[str]) -> list[str]:
        """At most max_lines and max_bytes per release, and MAX_LINE characters a line. Build
        and app output may fill all but a reserve, kept for temps' own step lines, so the
        outcome of a chatty deploy is never cut off."""
        reserve_lines = min(50, self.max_lines // 4)
        reserve_bytes = min(64 * 1024, self.max_bytes // 4)
        budget = self._budgets.setdefault(release_id, _Budget())
        kept: list[str] = []
        for line in lines:
            if len(line) > MAX_LINE:
                line = line[:MAX_LINE] + " [line cut]"
            own = line.startswith(STEP_PREFIX)
            line_room = self.max_lines - (0 if own else reserve_lines + 1)
            byte_room = self.max_bytes - (0 if own else reserve_bytes)
            if budget.lines < line_room and budget.size + len(line) <= byte_room:
                kept.append(line)
                budget.lines += 1
                budget.size += len(line)
            elif not own and not budget.cut:
                budget.cut = True
                over_lines = budget.lines >= line_room
                kept.append(
                    f"[log truncated at {self.max_lines} lines]"
                    if over_lines
                    else f"[log truncated at {self.max_bytes} bytes]"
                )
                budget.lines += 1
        return kept

    def finish(self, release_id: int) -> None:
        with self._changed:
            self._live.setdefault(release_id, _Follow()).done = True
            # Finished logs stay in memory for late followers, then only in the database.
            finished = [key for key, follow in self._live.items() if follow.done]
            for key in finished[:-KEEP_FINISHED_IN_MEMORY]:
                del self._live[key]
                self._budgets.pop(key, None)
            self._changed.notify_all()

    def forget(self, release_ids: Iterable[int]) -> None:
        """Releases whose records are gone (their app was destroyed): SQLite may give a new
        release one of their ids, whose log must start empty."""
        with self._writing, self._changed:
            for release_id in release_ids:
                self._live.pop(release_id, None)
                self._budgets.pop(release_id, None)
            self._changed.notify_all()

    def follow(self, release_id: int, position: int, timeout: float) -> Chunk:
        """Lines after `position`, waiting up to `timeout` for some; `done` once the job ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                follow = self._live.get(release_id)
                if follow is None:
                    lines = self.store.log_lines(release_id)
                    return Chunk(lines[position:], len(lines), True)
                if len(follow.lines) > position or follow.done:
                    return Chunk(follow.lines[position:], len(follow.lines), follow.done)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Chunk([], position, False)
                self._changed.wait(remaining)
