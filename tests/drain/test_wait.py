"""Drain: counting the connections on a port from /proc/net/tcp, and waiting for zero."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.drain.wait import connections_on, open_connections, wait_until_drained

Connect = Callable[[], tuple[socket.socket, socket.socket]]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def port(listener: socket.socket) -> int:
    number: int = listener.getsockname()[1]
    return number


@pytest.fixture
def connect(listener: socket.socket, port: int) -> Iterator[Connect]:
    opened: list[socket.socket] = []

    def open_pair() -> tuple[socket.socket, socket.socket]:
        client = socket.create_connection(("127.0.0.1", port), timeout=2.0)
        server_side, _ = listener.accept()
        opened.extend((client, server_side))
        return client, server_side

    yield open_pair
    for sock in opened:
        sock.close()


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def states_on(port: int) -> list[str]:
    """The raw state codes of the sockets whose local port is `port` (for failure messages)."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append(fields[3])
    return found


def test_a_listening_socket_alone_counts_zero(port: int) -> None:
    assert "0A" in states_on(port)  # the LISTEN socket is in the table...
    assert open_connections(port) == 0  # ...and is not counted


def test_an_established_connection_counts_once(port: int, connect: Connect) -> None:
    connect()
    # Only the accepted side has the port as its local port; the client's is ephemeral.
    assert open_connections(port) == 1, states_on(port)


def test_each_connection_counts(port: int, connect: Connect) -> None:
    connect()
    connect()
    connect()
    assert open_connections(port) == 3, states_on(port)


def test_a_connection_the_client_left_still_counts(port: int, connect: Connect) -> None:
    # The client went away while the handler still holds its socket: CLOSE_WAIT, in flight.
    client, _server_side = connect()
    client.close()
    assert eventually(lambda: "08" in states_on(port)), states_on(port)
    assert open_connections(port) == 1


def test_the_count_falls_to_zero_once_both_sides_close(port: int, connect: Connect) -> None:
    client, server_side = connect()
    assert open_connections(port) == 1
    server_side.close()
    client.close()
    # The side that closed first lingers in TIME_WAIT, which must not count.
    assert eventually(lambda: open_connections(port) == 0), states_on(port)
    assert "06" in states_on(port)


def test_another_port_is_not_counted(port: int, connect: Connect) -> None:
    connect()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other_port = other.getsockname()[1]
    assert open_connections(other_port) == 0


def test_tables_that_cannot_be_read_are_skipped(port: int, tmp_path: Path) -> None:
    assert open_connections(port, tables=(tmp_path / "missing",)) == 0


def test_wait_returns_drained_quickly_when_nothing_is_open(port: int) -> None:
    drained, seconds = wait_until_drained(port, timeout=2.0, interval=0.01)
    assert drained is True
    assert 0 <= seconds < 1.0


def test_wait_gives_up_at_the_timeout_while_a_connection_stays(port: int, connect: Connect) -> None:
    connect()
    started = time.monotonic()
    drained, seconds = wait_until_drained(port, timeout=0.3, interval=0.02)
    assert drained is False
    assert 0.3 <= seconds < 2.0
    assert time.monotonic() - started < 2.0


def test_wait_returns_soon_after_a_held_connection_closes(port: int, connect: Connect) -> None:
    client, server_side = connect()

    def finish_request() -> None:
        time.sleep(0.3)
        server_side.close()
        client.close()

    closer = threading.Thread(target=finish_request, daemon=True)
    closer.start()
    drained, seconds = wait_until_drained(port, timeout=5.0, interval=0.02)
    closer.join(timeout=2.0)
    assert drained is True
    assert 0.3 <= seconds < 3.0


def test_one_zero_sample_is_not_enough() -> None:
    # A count that flickers to zero between two requests must not end the drain.
    samples = iter([1, 0, 1, 0, 1, 0, 0])
    drained, _ = wait_until_drained(1, timeout=5.0, interval=0.0, counter=lambda _: next(samples))
    assert drained is True
    with pytest.raises(StopIteration):
        next(samples)


def test_a_port_on_another_address_is_counted_by_where_connections_go() -> None:
    """A Swarm task's port is on its node's address: the connections counted are the ones
    going there (Traefik's side), whatever the local port they come from."""
    remote = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    remote.bind(("127.0.0.2", 0))  # an address of its own, as a node's would be
    remote.listen(8)
    number = remote.getsockname()[1]
    try:
        assert connections_on(number, "127.0.0.2") == 0
        client = socket.create_connection(("127.0.0.2", number), timeout=2.0)
        accepted, _ = remote.accept()
        assert connections_on(number, "127.0.0.2") == 1
        assert connections_on(number, "127.0.0.3") == 0, "another address is not counted"
        client.close()
        accepted.close()
        assert wait_until_drained(number, 5.0, counter=lambda p: connections_on(p, "127.0.0.2"))[0]
    finally:
        remote.close()
