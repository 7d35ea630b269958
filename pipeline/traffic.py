"""Per-release traffic report from Traefik's own JSON access log.

Counts the requests for the app's host names, and those answered with anything but 2xx,
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
from typing import Any

BLOCK = 64 * 1024
# A request that started this long before the window may still be logged after it.
OUT_OF_ORDER_SECONDS = 10.0
MAX_SCAN_BYTES = 256 * 1024 * 1024


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.errors:,} errors in {self.requests:,} requests during the switch "
            f"({self.window_seconds:.1f}s; before: {self.before['errors']:,} errors in "
            f"{self.before['requests']:,})"
        )


def traffic_report(access_log: Path, hosts: set[str], start: float, end: float) -> TrafficReport:
    width = max(end - start, 0.0)
    during, before = Counts(), Counts()
    for stamp, host, status in _lines_backwards(access_log, start - width - OUT_OF_ORDER_SECONDS):
        if host not in hosts:
            continue
        if start <= stamp <= end:
            bucket = during
        elif start - width <= stamp < start:
            bucket = before
        else:
            continue
        bucket.requests += 1
        if not 200 <= status < 300:
            bucket.errors += 1
    return TrafficReport(round(width, 3), during.requests, during.errors, asdict(before))


def _lines_backwards(path: Path, stop_before: float) -> Iterator[tuple[float, str, int]]:
    """(start time, host, status) of access-log lines, newest first, until `stop_before`."""
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
                entry = _parse(raw)
                if entry is None:
                    continue
                if entry[0] < stop_before:
                    return
                yield entry
    finally:
        handle.close()


def _parse(raw: bytes) -> tuple[float, str, int] | None:
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
        stamp = _epoch(str(data["StartUTC"]))
        host = str(data.get("RequestHost", "")).split(":")[0].lower()
        return stamp, host, int(data.get("DownstreamStatus", 0))
    except (ValueError, KeyError, TypeError):
        return None


def _epoch(text: str) -> float:
    # Traefik writes nanoseconds; datetime takes at most microseconds.
    head, dot, tail = text.rstrip("Z").partition(".")
    fraction = (tail + "000000")[:6] if dot else "000000"
    return datetime.fromisoformat(f"{head}.{fraction}+00:00").timestamp()
