"""Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie, state in memory.

The admin token never leaves the login form: the cookie holds only a random session id, and
the server keeps the session (its CSRF token, its flash messages) in memory, keyed by a hash
of that id. A daemon restart signs everyone out, which is the safe direction to fail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request, Response

COOKIE = "temps_session"
COOKIE_PATH = "/dashboard"
IDLE_TIMEOUT = 12 * 3600.0
MAX_AGE = 7 * 24 * 3600.0
MAX_SESSIONS = 1000

_CREATE_LOCK = threading.Lock()


@dataclass
class Session:
    key: str  # sha256 of the cookie value
    who: str  # the name of the token that signed in
    token_hash: str  # its stored hash: revoking the token ends the session
    csrf: str
    created: float
    seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, message: str) -> None:
        """Show `message` on the next page; kind is ok, error or info."""
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _key(session_id: str) -> str:
    # Looked up by hash so the dict's string compare never runs on the secret itself.
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(
        self,
        idle_timeout: float = IDLE_TIMEOUT,
        max_age: float = MAX_AGE,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.limit = limit
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, who: str, token_hash: str) -> tuple[str, Session]:
        """A new session: (cookie value, session)."""
        session_id = secrets.token_urlsafe(32)
        at = time.time()
        session = Session(_key(session_id), who, token_hash, secrets.token_urlsafe(32), at, at)
        with self._lock:
            self._expire(at)
            while len(self._sessions) >= self.limit:
                oldest = min(self._sessions.values(), key=lambda s: s.seen)
                del self._sessions[oldest.key]
            self._sessions[session.key] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        at = time.time()
        with self._lock:
            session = self._sessions.get(_key(session_id))
            if session is None:
                return None
            if self._expired(session, at):
                del self._sessions[session.key]
                return None
            session.seen = at
            return session

    def drop(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.key, None)

    def _expired(self, session: Session, at: float) -> bool:
        return at - session.seen > self.idle_timeout or at - session.created > self.max_age

    def _expire(self, at: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, at)]:
            del self._sessions[key]


def sessions_of(request: Request) -> Sessions:
    """The sessions of this app instance, created on first use."""
    state = request.app.state
    with _CREATE_LOCK:
        sessions: Sessions | None = getattr(state, "dashboard_sessions", None)
        if sessions is None:
            sessions = Sessions()
            state.dashboard_sessions = sessions
    return sessions


def set_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(MAX_AGE),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
