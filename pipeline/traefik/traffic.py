"""Per-release traffic report from Traefik's own JSON access log.

Counts the requests for the app's host names on both entrypoints (not the redirects from
plain HTTP to HTTPS, which never reach the app), and those answered with anything but 2xx,
from the start of the switch to the retirement of the old slot, and for as long before it.
Traefik writes a line when a request ends, so lines are nearly but not strictly in order
of their start time; the backwards scan therefore stops only well past the window.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

BLOCK = 64 * 1024
REDIRECT_ROUTER = "_redirect@file"  # an app's router that sends plain HTTP to HTTPS
# A request that started this long before the window may still be logged after it.
OUT_OF_ORDER_SECONDS = 10.0
MAX_SCAN_BYTES = 256 * 1024 * 1024
WRITE_RACE_SECONDS = 1.0


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0


@dataclass(frozen=True)
class TrafficReport:
    window_seconds: float
    requests: int
    errors: int
    before: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.errors:,} errors in {self.requests:,} requests during the switch "
            f"({self.window_seconds:.1f}s; before: {self.before['errors']:,} errors in "
            f"{self.before['requests']:,})"
        )


class Sink(Protocol):
    """What else is made of the report's lines (the switch's graph, `pipeline.series.switch`):
    each of the app's requests that started from `since` to the report's end."""

    since: float

    def add(self, entry: Entry) -> None: ...


def traffic_report(
    access_log: Path, hosts: set[str], start: float, end: float, sink: Sink | None = None
) -> TrafficReport:
    width = max(end - start, 0.0)
    during, before = Counts(), Counts()
    oldest = min(start - width, sink.since if sink is not None else start)
    for entry in _entries_backwards(access_log):
        if entry.started < oldest - OUT_OF_ORDER_SECONDS:
            break
        if entry.host not in hosts or entry.router.endswith(REDIRECT_ROUTER):
            continue  # another app's, or sent to HTTPS without reaching the app
        if sink is not None and sink.since <= entry.started <= end:
            sink.add(entry)
        if start <= entry.started <= end:
            bucket = during
        elif start - width <= entry.started < start:
            bucket = before
        else:
            continue
        bucket.requests += 1
        if not 200 <= entry.status < 300:
            bucket.errors += 1
    return TrafficReport(round(width, 3), during.requests, during.errors, asdict(before))


def finished_during(access_log: Path, server_urls: set[str], start: float, end: float) -> int:
    """How many requests Traefik sent to one of `server_urls` ended between `start` and `end`:
    what a slot finished while it drained."""
    count = 0
    for entry in _entries_backwards(access_log):
        # Lines are written as requests end, so the file is in order of end time but for
        # writes racing each other: stop a little before the window.
        if entry.ended < start - WRITE_RACE_SECONDS:
            break
        if entry.server in server_urls and start <= entry.ended <= end + WRITE_RACE_SECONDS:
            count += 1
    return count


@dataclass(frozen=True)
class Served:
    """What a set of servers answered over a window: requests, errors (any 5xx, Traefik's
    own 502 and 504 for a server it could not reach included) and latency percentiles."""

    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "error_rate": round(self.error_rate, 4)}


def served_by(
    access_log: Path, groups: dict[str, set[str]], start: float, end: float
) -> dict[str, Served]:
    """For each group of server URLs, what its servers answered among the requests that
    started after `start` and ended by `end`."""
    durations: dict[str, list[float]] = {name: [] for name in groups}
    errors = dict.fromkeys(groups, 0)
    owner = {url: name for name, urls in groups.items() for url in urls}
    for entry in _entries_backwards(access_log):
        if entry.ended < start - WRITE_RACE_SECONDS:
            break
        name = owner.get(entry.server)
        if name is None or entry.started < start or entry.ended > end:
            continue
        durations[name].append(entry.ended - entry.started)
        if entry.status >= 500 or entry.status == 0:
            errors[name] += 1
    return {
        name: Served(len(taken), errors[name], percentile(taken, 50), percentile(taken, 95))
        for name, taken in durations.items()
    }


def percentile(seconds: list[float], percent: int) -> float | None:
    """The nearest-rank percentile, in milliseconds; None without a sample."""
    if not seconds:
        return None
    ranked = sorted(seconds)
    index = max(0, -(-percent * len(ranked) // 100) - 1)
    return round(ranked[index] * 1000, 2)


@dataclass(frozen=True)
class Entry:
    started: float
    ended: float
    host: str
    status: int
    server: str
    router: str


def _entries_backwards(path: Path) -> Iterator[Entry]:
    """The access log's entries, newest first, then its last rotated file's."""
    yield from _file_backwards(path)
    yield from _file_backwards(path.with_name(f"{path.name}.1"))


def _file_backwards(path: Path) -> Iterator[Entry]:
    """One file's entries, newest first, over at most MAX_SCAN_BYTES."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed in finally)
    except FileNotFoundError:
        return
    try:
        position = handle.seek(0, os.SEEK_END)
        scanned = 0
        rest = b""
        while position > 0 and scanned < MAX_SCAN_BYTES:
            size = min(BLOCK, position)
            position -= size
            scanned += size
            handle.seek(position)
            chunk = handle.read(size) + rest
            lines = chunk.split(b"\n")
            rest = lines[0] if position > 0 else b""
            for raw in reversed(lines[1:] if position > 0 else lines):
                entry = parse_line(raw)
                if entry is not None:
                    yield entry
    finally:
        handle.close()


def parse_line(raw: bytes) -> Entry | None:
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
        started = _epoch(str(data["StartUTC"]))
        return Entry(
            started=started,
            ended=started + int(data.get("Duration", 0)) / 1e9,
            host=str(data.get("RequestHost", "")).split(":")[0].lower(),
            status=int(data.get("DownstreamStatus", 0)),
            server=str(data.get("ServiceURL", "")),
            router=str(data.get("RouterName", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _epoch(text: str) -> float:
    # Traefik writes nanoseconds; datetime takes at most microseconds.
    head, dot, tail = text.rstrip("Z").partition(".")
    fraction = (tail + "000000")[:6] if dot else "000000"
    return datetime.fromisoformat(f"{head}.{fraction}+00:00").timestamp()
