"""Notifications against a real receiver on loopback: which releases are news, the signed body
sent for them, and delivery's retries, backoff and giving up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tenacity import RetryCallState, Retrying, wait_none

from pipeline.app.sealing import Sealer
from pipeline.app.webhooks import sign
from pipeline.release.records import TrafficRecord
from pipeline.sqlite.models import App, Release
from pipeline.steps import notify
from tests.support.scripted import ScriptedServer
from tests.support.wait import poll


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    """Answers each POST with the next status of the test's list, the last one from then on."""
    with ScriptedServer(list(request.param)) as server:
        yield server


def send(url: str) -> bool:
    return notify.deliver(url, b'{"event": "live"}', {}, "app", 1, backoff=wait_none())


@pytest.mark.parametrize("receiver", [[500, 502, 200]], indirect=True)
def test_a_failing_receiver_is_tried_again_until_it_takes_it(receiver: ScriptedServer) -> None:
    assert send(receiver.url)
    assert receiver.bodies == [b'{"event": "live"}'] * 3


@pytest.mark.parametrize("receiver", [[503]], indirect=True)
def test_delivery_gives_up_after_the_last_attempt(receiver: ScriptedServer) -> None:
    assert not send(receiver.url)
    assert len(receiver.bodies) == notify.ATTEMPTS == 3


@pytest.mark.parametrize("receiver", [[204]], indirect=True)
def test_a_receiver_that_takes_it_at_once_gets_one_post(receiver: ScriptedServer) -> None:
    assert send(receiver.url)
    assert len(receiver.bodies) == 1


def test_a_receiver_that_does_not_answer_counts_as_a_failed_attempt() -> None:
    closed = ScriptedServer([200])
    url = closed.url
    closed.close()  # nothing listens on the port any more
    assert not send(url)


def test_the_waits_between_attempts_grow_by_a_second() -> None:
    waits = [notify.default_backoff()(_attempt(number)) for number in (1, 2)]
    assert waits == [1, 2]


def _attempt(number: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = number
    return state


def test_a_canary_decision_is_its_own_event_with_its_figures() -> None:
    canary = {"decision": "withdrawn", "reason": "canary errors 4 of 20 requests", "steps": []}
    withdrawn = Release(
        app_id=1, number=2, source="push", commit="c0ffee", state="failed",
        failed_step="canary", traffic=TrafficRecord.model_validate({"canary": canary}),
    )  # fmt: skip
    body = notify.payload(App(name="shop"), withdrawn, str(notify.event_for(withdrawn)))
    assert body["event"] == "canary_withdrawn" and body["canary"] == canary
    promoted = Release(
        app_id=1, number=3, source="push", commit="c0ffee", state="live",
        traffic=TrafficRecord.model_validate({"canary": {**canary, "decision": "promoted"}}),
    )  # fmt: skip
    assert notify.event_for(promoted) == "canary_promoted"
    plain = Release(app_id=1, number=4, source="push", commit="c0ffee", state="live")
    assert notify.event_for(plain) == "live" and "canary" not in notify.payload(
        App(name="shop"), plain, "live"
    )


def release(**fields: Any) -> Release:
    if "traffic" in fields:
        fields["traffic"] = TrafficRecord.model_validate(fields["traffic"])
    return Release(**{"app_id": 1, "number": 4, "source": "push", "commit": "c0ffee", **fields})


PROMOTED = {"decision": "promoted", "reason": "canary 200 requests", "steps": []}
DRAINED = {"seconds": 1.0, "complete": True, "finished": 3, "timeout": 30.0, "started_at": 1.0,
           "ended_at": 2.0}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "event"),
    [
        ({"state": "live"}, "live"),
        ({"state": "live", "source": "rollback", "rollback_of": 2}, "rolled_back"),
        ({"state": "live", "traffic": {"canary": PROMOTED}}, "canary_promoted"),
        ({"state": "live", "traffic": {"drain": DRAINED}}, "live"),
        ({"state": "failed", "failed_step": "health_checking"}, "failed"),
        ({"state": "failed", "failed_step": "bake"}, "failed"),
        ({"state": "failed", "failed_step": "canary"}, "canary_withdrawn"),
        ({"state": "building"}, None),
        ({"state": "retired"}, None),
        ({"state": "superseded"}, None),
    ],
)
def test_only_a_release_that_went_live_or_failed_is_news(
    fields: dict[str, Any], event: str | None
) -> None:
    assert notify.event_for(release(**fields)) == event


def test_the_payload_says_what_happened_to_the_release() -> None:
    failed = release(
        state="failed", failed_step="health_checking", failure_reason="HTTP 500",
        log_tail="boom", updated_at=1700000000.5,
    )  # fmt: skip
    assert notify.payload(App(name="shop"), failed, "failed") == {
        "event": "failed", "app": "shop", "release": 4, "version": "v4", "state": "failed",
        "source": "push", "commit": "c0ffee", "rollback_of": None,
        "failure_reason": "HTTP 500", "failed_step": "health_checking", "log_tail": "boom",
        "at": 1700000000.5,
    }  # fmt: skip


@pytest.mark.parametrize("receiver", [[200]], indirect=True)
def test_news_is_posted_signed_with_the_app_s_secret_and_nothing_else_is(
    receiver: ScriptedServer,
) -> None:
    sealer = Sealer(bytes(32))
    app = App(name="shop", notify_url=receiver.url, notify_secret_sealed=sealer.seal("s3cret"))
    notify.send_in_background(sealer, app, release(state="building"))
    notify.send_in_background(sealer, App(name="quiet"), release(state="live"))  # no URL
    notify.send_in_background(sealer, app, release(state="live", rollback_of=2))
    poll(lambda: len(receiver.bodies), lambda n: n > 0, timeout=10, interval=0.02)
    time.sleep(0.2)  # what should not have been sent has had the time to arrive
    assert len(receiver.bodies) == 1
    body, headers = receiver.bodies[0], receiver.requests[0].headers
    assert json.loads(body)["event"] == "live" and json.loads(body)["rollback_of"] == 2
    assert headers[notify.SIGNATURE_HEADER.lower()] == sign("s3cret", body)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "temps-notify"


@pytest.mark.parametrize("receiver", [[200]], indirect=True)
def test_a_refused_certificate_is_posted_with_its_host_and_reason(receiver: ScriptedServer) -> None:
    sealer = Sealer(bytes(32))
    app = App(name="shop", notify_url=receiver.url, notify_secret_sealed=sealer.seal("s3cret"))
    before = time.time()
    notify.send_certificate_failed(sealer, app, "shop.example", "rate limited")
    poll(lambda: len(receiver.bodies), lambda n: n > 0, timeout=10, interval=0.02)
    sent = json.loads(receiver.bodies[0])
    assert sent.pop("at") >= before
    assert sent == {
        "event": "certificate_failed", "app": "shop", "host": "shop.example",
        "reason": "rate limited",
    }  # fmt: skip
    assert receiver.requests[0].headers[notify.SIGNATURE_HEADER.lower()] == sign(
        "s3cret", receiver.bodies[0]
    )
