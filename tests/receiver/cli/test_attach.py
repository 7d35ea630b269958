"""The run's WebSocket client against a server that answers the handshake and sends the
command's whole output and status in the same segment, as a quick command's can arrive: no
message is lost."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from receiver.cli import attach
from receiver.cli.target import Target


def serve_once(listener: socket.socket, seen: list[Request]) -> None:
    conn, _ = listener.accept()
    with conn:
        server = WSConnection(ConnectionType.SERVER)
        while not seen:
            server.receive_data(conn.recv(65536))
            seen += [e for e in server.events() if isinstance(e, Request)]
        status = json.dumps({"state": "exited", "exit_code": 0}).encode()
        burst = server.send(AcceptConnection(subprotocol=attach.PROTOCOL))
        burst += server.send(BytesMessage(bytes((attach.STDOUT,)) + b"A=1\n"))
        burst += server.send(BytesMessage(bytes((attach.STDOUT,)) + b"B=2\n"))
        burst += server.send(BytesMessage(bytes((attach.STATUS,)) + status))
        burst += server.send(CloseConnection(code=1000))
        conn.sendall(burst)  # one segment: the answer and everything after it
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(65536)


@pytest.fixture
def server() -> Iterator[tuple[int, list[Request]]]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        seen: list[Request] = []
        thread = threading.Thread(target=serve_once, args=(listener, seen), daemon=True)
        thread.start()
        yield listener.getsockname()[1], seen
        thread.join(10)


def test_output_sent_with_the_handshakes_answer_is_all_relayed(
    server: tuple[int, list[Request]], capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    port, seen = server
    target = Target(url=f"http://127.0.0.1:{port}", token="temps_t0ken", ca_file=None)
    with attach.attach(target, "/api/runs/7/attach?x=1") as socket_:
        status = attach.relay(socket_)
    assert status == {"state": "exited", "exit_code": 0}
    assert capfdbinary.readouterr().out == b"A=1\nB=2\n"
    (request,) = seen
    assert request.target == "/api/runs/7/attach?x=1"
    assert (b"authorization", b"Bearer temps_t0ken") in list(request.extra_headers)
    assert request.subprotocols == [attach.PROTOCOL]


def test_a_daemon_gone_before_it_answers_the_attach_is_named_as_lost() -> None:
    """A daemon killed while the container starts (before it accepts) closes the socket
    with no answer: the client says the connection was lost, not that the answer was bad."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def hang_up() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)  # the handshake's request, never answered

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        target = Target(url=f"http://127.0.0.1:{port}", token="temps_t0ken", ca_file=None)
        with pytest.raises(attach.NotAttached) as refused, attach.attach(target, "/api/a"):
            pass
        thread.join(10)
    assert "connection to the daemon was lost while attaching" in str(refused.value)
    assert "the daemon closed the connection" in str(refused.value)
