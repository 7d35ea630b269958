"""Notification delivery against a real receiver on loopback: retries, backoff, giving up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from tenacity import RetryCallState, Retrying, wait_none

from pipeline.steps import notify


class Flaky(HTTPServer):
    """Answers each POST with the next status of `statuses`, the last one from then on."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.statuses = statuses
        self.bodies: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"


class _Answer(BaseHTTPRequestHandler):
    server: Flaky

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads `Flaky.bodies`."""

    def do_POST(self) -> None:
        self.server.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        statuses = self.server.statuses
        self.send_response(statuses.pop(0) if len(statuses) > 1 else statuses[0])
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Flaky]:
    server = Flaky(list(request.param))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def send(url: str) -> bool:
    return notify.deliver(url, b'{"event": "live"}', {}, "app", 1, backoff=wait_none())


@pytest.mark.parametrize("receiver", [[500, 502, 200]], indirect=True)
def test_a_failing_receiver_is_tried_again_until_it_takes_it(receiver: Flaky) -> None:
    assert send(receiver.url)
    assert receiver.bodies == [b'{"event": "live"}'] * 3


@pytest.mark.parametrize("receiver", [[503]], indirect=True)
def test_delivery_gives_up_after_the_last_attempt(receiver: Flaky) -> None:
    assert not send(receiver.url)
    assert len(receiver.bodies) == notify.ATTEMPTS == 3


@pytest.mark.parametrize("receiver", [[204]], indirect=True)
def test_a_receiver_that_takes_it_at_once_gets_one_post(receiver: Flaky) -> None:
    assert send(receiver.url)
    assert len(receiver.bodies) == 1


def test_a_receiver_that_does_not_answer_counts_as_a_failed_attempt() -> None:
    closed = Flaky([200])
    url = closed.url
    closed.server_close()  # nothing listens on the port any more
    assert not send(url)


def test_the_waits_between_attempts_grow_by_a_second() -> None:
    waits = [notify.default_backoff()(_attempt(number)) for number in (1, 2)]
    assert waits == [1, 2]


def _attempt(number: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = number
    return state


def test_a_canary_decision_is_its_own_event_with_its_figures() -> None:
    from pipeline.sqlite.models import App, Release

    canary = {"decision": "withdrawn", "reason": "canary errors 4 of 20 requests", "steps": []}
    withdrawn = Release(
        app_id=1, number=2, source="push", commit="c0ffee", state="failed",
        failed_step="canary", traffic={"canary": canary},
    )  # fmt: skip
    body = notify.payload(App(name="shop"), withdrawn, str(notify.event_for(withdrawn)))
    assert body["event"] == "canary_withdrawn" and body["canary"] == canary
    promoted = Release(
        app_id=1, number=3, source="push", commit="c0ffee", state="live",
        traffic={"canary": {**canary, "decision": "promoted"}},
    )  # fmt: skip
    assert notify.event_for(promoted) == "canary_promoted"
    plain = Release(app_id=1, number=4, source="push", commit="c0ffee", state="live")
    assert notify.event_for(plain) == "live" and "canary" not in notify.payload(
        App(name="shop"), plain, "live"
    )
