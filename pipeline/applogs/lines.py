"""What a tail shows: each line with who printed it and when, and where a follower takes up
a container's log again without showing a line twice.

A line reads `2025-06-01T10:00:00.123456Z web.1 v2: text` (the engine's time in UTC, the
process type and its instance, the release), as Heroku's `app[web.1]:` does; the text is
passed through as the app printed it, whatever its bytes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.errors import InvalidInput
from pipeline.runtime import LogLine

DEFAULT_LINES = 100  # shown first when neither a number nor `since` is given
MAX_LINES = 10_000  # shown first at most, however far back `since` goes
SINCE = re.compile(r"^(\d{1,9})([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Label:
    """A container a tail follows: `web.1` of v2 is the first web container v2 records."""

    process: str
    instance: int  # 1-based, in the order the release records its containers
    release: int
    container: str

    def __str__(self) -> str:
        return f"{self.process}.{self.instance}"


@dataclass(frozen=True)
class AppLine:
    label: Label
    line: LogLine

    @property
    def at(self) -> int:
        return self.line.at

    def text(self) -> bytes:
        """The line as a client reads it, with its newline."""
        head = f"{stamp(self.at)} {self.label} v{self.label.release}: "
        return head.encode() + self.line.text + b"\n"


@dataclass(frozen=True)
class Notice:
    """Something about the tail itself (nothing runs, the engine is away), not an app's line."""

    at: int
    message: str

    def text(self) -> bytes:
        return f"{stamp(self.at)} temps: {self.message}\n".encode()


def stamp(at: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds."""
    moment = datetime.fromtimestamp(at // 10**9, UTC).replace(microsecond=at // 1000 % 10**6)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Cursor:
    """Where a container's log is taken up again: lines before `at` are not shown, and of
    those at exactly `at`, the first `seen` have been shown already (the engine's `since`
    includes its own instant)."""

    at: int = 0  # nanoseconds; 0: from the container's first line
    seen: int = 0

    @property
    def since(self) -> int | None:
        return self.at or None

    def after(self, line: LogLine) -> Cursor:
        """The cursor once `line` has been shown (never back: stdout and stderr are stamped
        apart, and a line of one may come a hair earlier than a line of the other)."""
        if line.at < self.at:
            return self
        return Cursor(line.at, self.seen + 1 if line.at == self.at else 1)


class Resumed:
    """Filters one read of a log that started at `cursor.since`: only lines not shown yet
    pass, and `cursor` moves past each one that does."""

    def __init__(self, cursor: Cursor) -> None:
        self.start = cursor
        self.cursor = cursor
        self._same = 0  # lines at exactly start.at met so far

    def admits(self, line: LogLine) -> bool:
        if line.at < self.start.at:
            return False
        if line.at == self.start.at:
            self._same += 1
            if self._same <= self.start.seen:
                return False
        self.cursor = self.cursor.after(line)
        return True


def since_ns(text: str, now: float | None = None) -> int:
    """`--since`: a duration back from now (`90s`, `10m`, `2h`, `1d`) or an RFC 3339 time,
    as nanoseconds since the epoch."""
    given = text.strip()
    found = SINCE.match(given)
    now = time.time() if now is None else now
    if found:
        seconds = int(found.group(1)) * UNIT_SECONDS[found.group(2)]
        return max(1, int((now - seconds) * 1e9))
    try:
        moment = datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or moment.year < 1971:
        raise InvalidInput(
            f"since: expected a duration such as 10m, 90s, 2h or 1d, or a time such as "
            f"2025-06-01T10:00:00Z, got {given[:64]!r}"
        )
    return int(moment.timestamp() * 1e9)
