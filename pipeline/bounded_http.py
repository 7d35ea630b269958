"""One GET to an app, bounded in wall-clock time and in bytes: the status line and headers only.

The apps temps probes are not trusted. httpx's timeouts bound each read, not a request: an
answer that dribbles a byte a second never times out, and a body without end is buffered
whole. Here the socket's timeout is the time left before one deadline, h11 (httpx's own
HTTP/1.1 parser) parses at most MAX_HEAD_BYTES of status line and headers, the body is never
read, and the connection is closed at once, so a probe never lingers as a request in flight.
"""

from __future__ import annotations

import functools
import math
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

MAX_HEAD_BYTES = 16 * 1024
READ_SIZE = 4096
USER_AGENT = "temps-health"


class NoAnswer(Exception):
    """Connected, but no complete status line and headers came before the deadline."""


class NotListening(Exception):
    """Refused, reset, or closed before a response began: nothing serves there yet."""


class BadAnswer(Exception):
    """Something answered, but not with HTTP/1.x within MAX_HEAD_BYTES."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased


def get_head(
    url: str, timeout: float, host: str | None = None, connect_timeout: float = math.inf
) -> Answer:
    """GET `url` and return its status and headers within `timeout` seconds.

    A connection not taken within `connect_timeout` (when shorter) is given up as nothing
    listening there, rather than waited for until `timeout` as no answer.
    An https URL is for the daemon's own Traefik on loopback: `host` goes in the SNI too, and
    the certificate is not checked (what is probed is the route behind it, not the chain)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    secure = parts.scheme == "https"
    address = (parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80))
    deadline = time.monotonic() + timeout
    name = host or parts.netloc
    connect_within = min(timeout, connect_timeout)
    connected = False
    try:
        with socket.create_connection(address, timeout=connect_within) as raw:
            connected = True
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not secure:
                return _exchange(raw, target, name, deadline, timeout)
            with _unchecked().wrap_socket(raw, server_hostname=name.split(":")[0]) as sock:
                return _exchange(sock, target, name, deadline, timeout)
    except TimeoutError as exc:
        if not connected and connect_within < timeout:
            raise NotListening(f"no connection within {connect_within:g}s") from exc
        raise NoAnswer(f"no answer within {timeout:g}s") from exc
    except (ConnectionError, OSError) as exc:  # ssl.SSLError is an OSError
        raise NotListening(type(exc).__name__) from exc


@functools.cache
def _unchecked() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _exchange(
    sock: socket.socket, target: str, host: str, deadline: float, timeout: float
) -> Answer:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    request = h11.Request(
        method="GET",
        target=target,
        headers=[("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close")],
    )
    sock.sendall(connection.send(request) + connection.send(h11.EndOfMessage()))
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadAnswer(f"not an HTTP answer ({exc})") from exc
        if event is h11.NEED_DATA:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoAnswer(f"no answer within {timeout:g}s")
            sock.settimeout(remaining)
            data = sock.recv(READ_SIZE)
            if not data:
                raise NotListening("closed without a response")
            connection.receive_data(data)
        elif isinstance(event, h11.Response):
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in event.headers
            }
            return Answer(event.status_code, headers)
        elif isinstance(event, h11.ConnectionClosed):
            raise NotListening("closed without a response")
        # an InformationalResponse (1xx): the real answer follows
