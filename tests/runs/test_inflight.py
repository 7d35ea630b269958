"""The runs an app has in flight: held against its limit, claimed once by the token that asked,
given up when no client attaches in time."""

from __future__ import annotations

import itertools
import threading

import pytest

from pipeline.errors import Conflict, Forbidden, RunLimitReached
from pipeline.runs.asked import checked
from pipeline.runs.inflight import InFlight, Ticket

ids = itertools.count(1)


def ask(inflight: InFlight, app: str, *command: str, who: str = "admin") -> Ticket:
    asked = checked(list(command), most_seconds=60)
    return inflight.admit(app, who, asked, 3, lambda: next(ids))


def test_past_the_limit_the_refusal_names_every_run_in_flight() -> None:
    inflight = InFlight(limit=2, attach_timeout=60, expired=lambda ticket: None)
    first = ask(inflight, "one", "sleep", "30")
    ask(inflight, "one", "python", "manage.py", "shell")
    ask(inflight, "other", "true")  # another app's place is its own
    inflight.claim("one", first.run_id, "admin")
    with pytest.raises(RunLimitReached) as refused:
        ask(inflight, "one", "true")
    message = str(refused.value)
    assert "already has 2 one-off runs" in message, message
    assert f"run {first.run_id} `sleep 30` by admin, running for 0 s" in message, message
    assert "`python manage.py shell` by admin, waiting for its client" in message, message
    inflight.leave(first)
    ask(inflight, "one", "true")


def test_a_run_is_claimed_once_and_only_by_the_token_that_asked() -> None:
    inflight = InFlight(limit=3, attach_timeout=60, expired=lambda ticket: None)
    ticket = ask(inflight, "one", "true", who="ci")
    with pytest.raises(Forbidden, match="asked for by token 'ci'"):
        inflight.claim("one", ticket.run_id, "admin")
    assert inflight.claim("one", ticket.run_id, "ci") is ticket
    with pytest.raises(Conflict, match="not waiting for a client"):
        inflight.claim("one", ticket.run_id, "ci")
    with pytest.raises(Conflict):
        inflight.claim("other", ticket.run_id, "ci")


def test_a_run_no_client_attaches_to_is_given_up_and_its_place_freed() -> None:
    given_up: list[Ticket] = []
    told = threading.Event()

    def expired(ticket: Ticket) -> None:
        given_up.append(ticket)
        told.set()

    inflight = InFlight(limit=1, attach_timeout=0.2, expired=expired)
    ticket = ask(inflight, "one", "true")
    assert told.wait(10), "the run was never given up"
    assert given_up == [ticket] and inflight.of("one") == []
    with pytest.raises(Conflict):
        inflight.claim("one", ticket.run_id, "admin")
    claimed = ask(inflight, "one", "true")
    inflight.claim("one", claimed.run_id, "admin")
    told.clear()
    assert not told.wait(0.5), "a claimed run was given up"
