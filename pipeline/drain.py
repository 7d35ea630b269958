"""Drain: wait until no request is in flight on the old slot's ports.

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
import time
from collections.abc import Callable, Iterable
from pathlib import Path

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


def wait_until_drained(
    port: int,
    timeout: float,
    interval: float = 0.05,
    counter: Callable[[int], int] = connections_on,
) -> tuple[bool, float]:
    """Two zero samples in a row mean nothing is in flight. Returns (drained, seconds)."""
    started = time.monotonic()
    zeros = 0
    while True:
        zeros = zeros + 1 if counter(port) == 0 else 0
        elapsed = time.monotonic() - started
        if zeros >= 2:
            return True, elapsed
        if elapsed >= timeout:
            return False, elapsed
        time.sleep(interval)


def drain(
    container: str,
    ports: Iterable[int],
    timeout: float,
    address: str = LOOPBACK,
) -> Drained:
    """Wait until every one of the container's ports at `address` has drained, all within
    `timeout`."""
    counter = functools.partial(connections_on, address=address)
    started_at, started = time.time(), time.monotonic()
    complete = True
    ports = tuple(ports)
    for port in ports:
        left = max(timeout - (time.monotonic() - started), 0.0)
        drained, _ = wait_until_drained(port, left, counter=counter)
        complete = complete and drained
    seconds = time.monotonic() - started
    return Drained(container, ports, complete, seconds, started_at, started_at + seconds, timeout)
