"""Loopback ports for the servers a test starts (daemons, Traefik, pebble, backends).

A port the kernel picks (`bind(0)`) comes from the ephemeral range, the same range every
outgoing connection takes its local port from: under load (hey, wrk, a test's own clients),
a port picked, closed and handed to a server a moment later is often taken by a client
connection first, and the server fails with `address already in use`. These ports come from
below that range, where only listeners are, and are never handed out twice by one process;
two test workers may still pick the same one, which `start_daemon` retries.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOWEST = 20_000
_handed_out: set[int] = set()
_guard = threading.Lock()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, udp_too: bool = False) -> int:
    """A loopback port free now for TCP (and for UDP too when asked: a mock DNS binds both)."""
    highest = max(_ephemeral_start() - 1, LOWEST + 1000)
    for _ in range(200):
        port = random.randint(LOWEST, highest)
        with _guard:
            if port in _handed_out:
                continue
            if not _free(port, socket.SOCK_STREAM):
                continue
            if udp_too and not _free(port, socket.SOCK_DGRAM):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port between {LOWEST} and {highest} in 200 tries")
