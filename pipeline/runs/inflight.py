"""The one-off runs in flight, by app: at most `limit` each, waiting for their client or
running. One that no client attaches to within `attach_timeout` is given up, so that a client
that asked and went away holds no place for good."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.errors import Conflict, Forbidden, RunLimitReached
from pipeline.runs.asked import Asked


@dataclass
class Ticket:
    """A run's place among its app's runs in flight."""

    app: str
    run_id: int
    release: int  # the release it runs from
    who: str
    asked: Asked
    asked_at: float = field(default_factory=time.monotonic)
    attached_at: float | None = None  # once its client has attached
    expiry: threading.Timer | None = None

    def describe(self) -> str:
        head = f"run {self.run_id} `{self.asked.shown}` by {self.who}"
        if self.attached_at is None:
            return f"{head}, waiting for its client"
        return f"{head}, running for {time.monotonic() - self.attached_at:.0f} s"


class InFlight:
    def __init__(
        self, limit: int, attach_timeout: float, expired: Callable[[Ticket], None]
    ) -> None:
        self.limit = limit
        self.attach_timeout = attach_timeout
        self._expired = expired  # told of each ticket given up
        self._by_app: dict[str, dict[int, Ticket]] = {}
        self._lock = threading.Lock()

    def admit(
        self, app: str, who: str, asked: Asked, release: int, record: Callable[[], int]
    ) -> Ticket:
        """A place for the run, whose record `record()` makes and names; RunLimitReached,
        naming every run the app has in flight, when it has `limit` already."""
        with self._lock:
            # Recorded under the lock: two asks at once must not both take the last place.
            held = self._by_app.setdefault(app, {})
            if len(held) >= self.limit:
                runs = "; ".join(ticket.describe() for ticket in held.values())
                raise RunLimitReached(
                    f"app {app!r} already has {len(held)} one-off runs, its limit "
                    f"(--max-runs-per-app): {runs}"
                )
            ticket = Ticket(app, record(), release, who, asked)
            held[ticket.run_id] = ticket
            ticket.expiry = threading.Timer(self.attach_timeout, self._expire, (ticket,))
            ticket.expiry.daemon = True
            ticket.expiry.start()
            return ticket

    def claim(self, app: str, run_id: int, who: str) -> Ticket:
        """The run for the client that attaches to it: the one that asked, once."""
        with self._lock:
            ticket = self._by_app.get(app, {}).get(run_id)
            if ticket is None or ticket.attached_at is not None:
                raise Conflict(
                    f"run {run_id} of {app!r} is not waiting for a client: it was attached "
                    "to already, has ended, or was given up"
                )
            if ticket.who != who:
                raise Forbidden(f"run {run_id} of {app!r} was asked for by token {ticket.who!r}")
            ticket.attached_at = time.monotonic()
            if ticket.expiry is not None:
                ticket.expiry.cancel()
            return ticket

    def leave(self, ticket: Ticket) -> None:
        with self._lock:
            self._by_app.get(ticket.app, {}).pop(ticket.run_id, None)

    def of(self, app: str) -> list[Ticket]:
        with self._lock:
            return list(self._by_app.get(app, {}).values())

    def _expire(self, ticket: Ticket) -> None:
        with self._lock:
            held = self._by_app.get(ticket.app, {})
            if ticket.attached_at is not None or held.get(ticket.run_id) is not ticket:
                return
            del held[ticket.run_id]
        self._expired(ticket)
