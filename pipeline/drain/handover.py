"""Handover: the connections a leaving slot still holds when its drain_timeout ends (WebSockets,
event streams, long polls) are ended a few at a time, oldest first, over `handover_window`,
so that their clients reconnect to the live release spread over time and not in one second.

Nothing routes to a leaving slot any more, so no connection to it is newer than its drain:
the kernel's socket inode numbers, which grow as sockets are made, order them by age. Each is
ended on the proxy's side (`ss -K`, the kernel's SOCK_DESTROY): Traefik sees its connection to
the container fail and ends the client's, which then reconnects through Traefik to the live
release. A kernel built without SOCK_DESTROY ends none here; the window is then waited out and
the container's stop ends what is left.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

SS_TIMEOUT = 5.0
PAUSE = 0.05  # between two looks at what is left


@dataclass(frozen=True, order=True)
class Held:
    """One connection from the proxy to a leaving container, ordered oldest first."""

    inode: int
    proxy_end: str  # "10.0.0.1:43210": the proxy's address and port
    to: str  # "172.18.0.5:5000": the container's


def _targets(address: str, ports: Iterable[int]) -> str:
    """An `ss` filter for connections going to any of the ports at `address`."""
    host = f"[{address}]" if ":" in address else address
    return " or ".join(f"dst {host}:{port}" for port in ports)


def held(address: str, ports: tuple[int, ...]) -> list[Held]:
    """The proxy's connections to the container's ports at `address` (a published port's are
    at loopback), oldest first. Empty when there are none, or when `ss` cannot tell."""
    if not ports:
        return []
    return sorted(_sockets("-Htne", "exclude", "time-wait", f"( {_targets(address, ports)} )"))


def _sockets(*asked: str) -> list[Held]:
    """The connected sockets `ss` lists (or, with -K, ended) for `asked`; none when it fails."""
    try:
        found = subprocess.run(
            ["ss", *asked[:1], "state", "connected", *asked[1:]],
            capture_output=True,
            text=True,
            timeout=SS_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [c for c in map(_parsed, found.stdout.splitlines()) if c is not None]


def _parsed(line: str) -> Held | None:
    """`ESTAB 0 0 10.0.0.1:43210 172.18.0.5:5000 ino:5176 sk:17a ...` (the state first when
    more than one state was asked for)."""
    words = line.split()
    if words and not words[0].isdigit():
        words = words[1:]
    inode = next((w.removeprefix("ino:") for w in words if w.startswith("ino:")), "")
    if len(words) < 4 or not inode.isdigit():
        return None
    return Held(int(inode), words[2], words[3])


# Connections ended by one `ss -K`: one process per connection (15-20 ms here) capped a
# handover at about 60 a second, so a window of 0 took seconds for 200 streams and a window
# could not hold more than 60 per second of it; a filter of 64 ends stays a few KB.
BATCH = 64


def end(connections: Sequence[Held]) -> list[Held]:
    """End connections on the proxy's side, BATCH to an `ss` call; those the kernel ended."""
    ended: list[Held] = []
    for start in range(0, len(connections), BATCH):
        ended += _end_batch(connections[start : start + BATCH])
    return ended


def _end_batch(batch: Sequence[Held]) -> list[Held]:
    ends = " or ".join(f"( src {_quoted(c.proxy_end)} and dst {_quoted(c.to)} )" for c in batch)
    # `ss -K` lists the sockets it ended, and only those.
    gone = {c.inode for c in _sockets("-HtneK", f"( {ends} )")}
    return [c for c in batch if c.inode in gone]


def _quoted(end: str) -> str:
    """`ss` prints an IPv6 end as `[::1]:80` and reads it back the same way."""
    return end if end.startswith("[") or end.count(":") == 1 else f"[{end}]"


@dataclass(frozen=True)
class Spread:
    """What a handover did: how many connections it found, how many it ended itself."""

    found: int
    ended: int
    seconds: float


def spread(
    address: str,
    ports: tuple[int, ...],
    window: float,
    *,
    look: Callable[[str, tuple[int, ...]], list[Held]] = held,
    finish: Callable[[Sequence[Held]], list[Held]] = end,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Spread:
    """End the connections to the ports at `address` over `window` seconds, oldest first: by
    any moment `t` into the window at most `ceil(found * t / window)` have been ended, so no
    second sees more than `found / window` of them (one more, at the edges). Those the app
    or its clients end meanwhile are not ended twice; one the kernel will not end is left to
    the container's stop. A window of 0 ends them all at once."""
    started = clock()
    left = look(address, ports)
    found, ended = len(left), 0
    refused: set[Held] = set()
    while left:
        elapsed = clock() - started
        share = 1.0 if window <= 0 else min(elapsed / window, 1.0)
        due = max(math.ceil(found * share) - ended - len(refused), 0)
        batch = [c for c in left if c not in refused][:due]
        if batch:
            done = set(finish(batch))
            ended += len(done)
            refused.update(c for c in batch if c not in done)
        if elapsed >= window:
            break
        sleep(PAUSE)
        left = look(address, ports)
    return Spread(found, ended, clock() - started)
