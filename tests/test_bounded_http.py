"""The bounded GET behind every health probe, against real sockets that misbehave on purpose.

Each server below is a thread on a loopback port that answers one way: normally, a byte at a
time for ever, with headers that never end, with a body that never ends, with garbage, or by
closing. The probe must come back within its timeout every time, having read a few KiB at
most, and say what it saw.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from pipeline.bounded_http import BadAnswer, NoAnswer, NotListening, get_head
from pipeline.steps.health import probe

Handler = Callable[[socket.socket], None]


@contextmanager
def serving(handler: Handler) -> Iterator[tuple[str, list[int]]]:
    """A loopback server running `handler` per connection: (url, bytes each handler sent)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sent: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            counted = _Counting(conn, stop)
            threading.Thread(target=_run, args=(handler, counted, sent), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/health", sent
    finally:
        stop.set()
        thread.join(2)
        listener.close()


class _Counting:
    def __init__(self, conn: socket.socket, stop: threading.Event) -> None:
        self.conn, self.stop, self.count = conn, stop, 0

    def send(self, data: bytes) -> None:
        if self.stop.is_set():
            raise OSError("server stopped")
        self.conn.sendall(data)
        self.count += len(data)


def _run(handler: Callable[[_Counting], None], conn: _Counting, sent: list[int]) -> None:
    try:
        conn.conn.recv(4096)  # the request
        handler(conn)
    except OSError:
        pass
    finally:
        sent.append(conn.count)
        conn.conn.close()


def ok(conn: _Counting) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Temps-Release: v3\r\n\r\nok")


def dribble_status(conn: _Counting) -> None:
    for byte in b"HTTP/1.1 200 OK\r\n":
        conn.send(bytes([byte]))
        time.sleep(0.2)
    while True:
        conn.send(b"X")
        time.sleep(0.2)


def endless_headers(conn: _Counting) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\n")
    while True:
        conn.send(b"X-Filler: " + b"a" * 1000 + b"\r\n")


def endless_body(conn: _Counting) -> None:
    conn.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 999999999999\r\n\r\n")
    while True:
        conn.send(b"z" * 65536)


def garbage(conn: _Counting) -> None:
    conn.send(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


def hang_up(conn: _Counting) -> None:
    return


def informational_first(conn: _Counting) -> None:
    conn.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")


def test_a_normal_answer_gives_its_status_and_headers() -> None:
    with serving(ok) as (url, _):
        answer = get_head(url, 1.0)
    assert answer.status == 200
    assert answer.headers["x-temps-release"] == "v3"


def test_an_informational_answer_is_skipped_for_the_final_one() -> None:
    with serving(informational_first) as (url, _):
        assert get_head(url, 1.0).status == 204


@pytest.mark.parametrize("handler", [dribble_status], ids=["a-byte-every-200ms"])
def test_an_answer_that_dribbles_ends_at_the_timeout(handler: Handler) -> None:
    with serving(handler) as (url, _):
        started = time.monotonic()
        with pytest.raises(NoAnswer):
            get_head(url, 0.8)
        took = time.monotonic() - started
    # Each read got a byte well within the timeout: only a deadline over all of them ends it.
    assert 0.7 <= took < 1.2, took


def test_headers_without_end_stop_after_a_few_kib() -> None:
    with serving(endless_headers) as (url, _):
        with pytest.raises(BadAnswer):
            get_head(url, 5.0)
        result = probe(url, 5.0)
    assert not result.ok and result.answered, result


def test_a_body_without_end_is_never_read() -> None:
    with serving(endless_body) as (url, _):
        started = time.monotonic()
        result = probe(url, 5.0)
        took = time.monotonic() - started
    assert (result.ok, result.answered, result.detail) == (False, True, "HTTP 503")
    assert took < 1.0, took


def test_garbage_is_a_failed_answer() -> None:
    with serving(garbage) as (url, _):
        result = probe(url, 1.0)
    assert not result.ok and result.answered, result


def test_closed_or_refused_means_not_listening() -> None:
    with serving(hang_up) as (url, _), pytest.raises(NotListening):
        get_head(url, 1.0)
    # The server is gone now: its port refuses.
    result = probe(url, 1.0)
    assert (result.ok, result.answered) == (False, False), result


@contextmanager
def taking_no_connection() -> Iterator[str]:
    """A loopback address where a connection is never taken: a listener whose one-place
    queue is full drops every SYN, as an address nobody holds any more never answers."""
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        first.connect(listener.getsockname())  # fills the queue: nothing accepts it
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/health"


def test_a_connection_not_taken_is_no_answer_or_within_connect_timeout_not_listening() -> None:
    with taking_no_connection() as url:
        with pytest.raises(NoAnswer):
            get_head(url, 0.3)
        started = time.monotonic()
        with pytest.raises(NotListening, match=r"no connection within 0\.1s"):
            get_head(url, 30.0, connect_timeout=0.1)
        assert time.monotonic() - started < 10.0  # not the 30 s of its timeout
        result = probe(url, 30.0, connect_timeout=0.1)
    assert (result.ok, result.answered, result.silent) == (False, False, True), result
