"""Drain: wait until no request is in flight on the old slot's ports, then hand over the
connections that outlast it (`pipeline.drain.handover`).

Traefik has no drain of its own. After the switch is confirmed it sends nothing new to the
old server, and with a short idle timeout its idle connections close within about a second,
so the sockets on the old port fall to zero once the last request has finished. Every
state but LISTEN and TIME_WAIT counts: a client that went away leaves CLOSE_WAIT while the
handler still runs.

`drain` is the only maker of a `Drained`, and the runtime stops a container only when handed
one: a slot that may have served cannot be stopped without having been drained first.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.drain import handover
from pipeline.runtime import LOOPBACK, Drained

_LISTEN = "0A"
_TIME_WAIT = "06"
PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def open_connections(port: int, tables: tuple[Path, ...] = PROC_TABLES) -> int:
    count = 0
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state not in (_LISTEN, _TIME_WAIT):
                count += 1
    return count


def connections_on(port: int, address: str = LOOPBACK) -> int:
    """Like open_connections, but filtered in the kernel by `ss`: /proc/net/tcp lists every
    socket on the host (thousands in TIME_WAIT under load) and reading it takes 25-200 ms.

    A loopback port (published by Docker) is counted on Docker's side, its proxy's accepted
    connections; a port at another address (a container's on the home's bridge, a Swarm
    node's) on Traefik's side, by where its connections go."""
    where = f"sport = :{port}" if address == LOOPBACK else f"dst {address}:{port}"
    try:
        found = subprocess.run(
            ["ss", "-Htn", "state", "connected", "exclude", "time-wait", f"( {where} )"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        if address != LOOPBACK:
            raise
        return open_connections(port)
    return sum(1 for line in found.stdout.splitlines() if line.strip())


SETTLE_SECONDS = 5.0  # then the samples slow down: what is left is long-lived
SLOW_INTERVAL = 1.0
AFTER_HANDOVER = 5.0  # the most the sockets get to close once every connection was ended


def wait_until_drained(
    port: int,
    timeout: float,
    interval: float = 0.05,
    counter: Callable[[int], int] = connections_on,
    watch: Watch | None = None,
) -> tuple[bool, float]:
    """Two zero samples in a row mean nothing is in flight. Returns (drained, seconds).

    Samples come every `interval` for the first seconds, then every second: a drain that
    lasts hours holds WebSockets or event streams, not requests about to end. A watch is
    told each count, and ends the wait when it asks for the handover early."""
    started = time.monotonic()
    zeros = 0
    while True:
        count = counter(port)
        zeros = zeros + 1 if count == 0 else 0
        elapsed = time.monotonic() - started
        if watch is not None:
            watch.connections = count
            watch.holding = count > 0 and elapsed >= SETTLE_SECONDS
        if zeros >= 2:
            return True, elapsed
        if elapsed >= timeout:
            return False, elapsed
        pause = interval if elapsed < SETTLE_SECONDS else max(interval, SLOW_INTERVAL)
        pause = min(pause, timeout - elapsed)
        if watch is not None and watch.early.wait(pause):
            return False, time.monotonic() - started
        if watch is None:
            time.sleep(pause)


@dataclass
class Watch:
    """A leaving container as `temps ps` shows it, kept up to date by its drain. Setting
    `early` asks for its handover now (a later deploy past the bound on leaving slots)."""

    container: str
    release: str  # "v3"
    serves: bool  # it has ports: a web container
    since: float = field(default_factory=time.time)  # epoch seconds
    handover_at: float | None = None  # epoch seconds, once its drain knows
    connections: int = 0
    holding: bool = False  # what it holds has outlasted the first seconds: long-lived
    handing_over: bool = False
    early: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Handover:
    """How the connections left at the end of a drain are handed to the live release:
    spread over `window` seconds, after `signal` (when given) told the app so."""

    window: float = 0.0
    signal: Callable[[], None] | None = None


def drain(
    container: str,
    ports: Iterable[int],
    timeout: float,
    address: str = LOOPBACK,
    handover: Handover | None = Handover(),
    watch: Watch | None = None,
    begun: Drained | None = None,
) -> Drained:
    """Wait until every one of the container's ports at `address` has drained, all within
    `timeout`; then hand over what is left, when `handover` says how (None: leave it).

    `begun` is the same slot's drain that was cut short to answer the pusher: this one goes
    on from it, within what is left of the same timeout."""
    counter = functools.partial(connections_on, address=address)
    started_at, started = time.time(), time.monotonic()
    already = 0.0
    if begun is not None:
        started_at, already = begun.started_at, begun.seconds
    budget = max(timeout - already, 0.0)
    ports = tuple(ports)
    if watch is not None:
        watch.since, watch.handover_at = started_at, started_at + timeout
    complete = True
    for port in ports:
        left = max(budget - (time.monotonic() - started), 0.0)
        drained, _ = wait_until_drained(port, left, counter=counter, watch=watch)
        complete = complete and drained
    handed = 0
    if not complete and handover is not None and ports:
        handed = _hand_over(address, ports, handover, watch)
        complete = all(wait_until_drained(p, AFTER_HANDOVER, counter=counter)[0] for p in ports)
    seconds = already + time.monotonic() - started
    return Drained(
        container,
        ports,
        complete,
        seconds,
        started_at,
        started_at + seconds,
        timeout,
        handed,
    )


def _hand_over(address: str, ports: tuple[int, ...], how: Handover, watch: Watch | None) -> int:
    """Tell the app (when asked to), then end what it still holds over the window."""
    if watch is not None:
        watch.handing_over = True
    if how.signal is not None:
        how.signal()
    return handover.spread(address, ports, how.window).ended
