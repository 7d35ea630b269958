"""What every dashboard route shares: the session check, HTML answers with their security
headers, redirects, and the checks an action POST must pass (session, size, CSRF token).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from pipeline.errors import InvalidInput, TempsError
from receiver.api.apps import daemon_of
from receiver.daemon import Daemon
from receiver.dashboard import pages
from receiver.dashboard.session import COOKIE, Session, sessions_of
from receiver.dashboard.templating import render_page
from receiver.problems import status_for

MAX_FORM_BYTES = 16 * 1024
SECURITY_HEADERS = {
    # Styles and the one script come from the daemon itself; nothing inline, nothing foreign.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HOME = "/dashboard"


def html(frame: pages.Frame, page: pages.Page, status: int = 200) -> HTMLResponse:
    return HTMLResponse(render_page(frame, page), status_code=status, headers=SECURITY_HEADERS)


def frame(
    session: Session, title: str, crumbs: list[tuple[str, str | None]] | None = None
) -> pages.Frame:
    return pages.Frame(title, session.csrf, session.take_flashes(), crumbs or [])


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def current_session(request: Request) -> Session | None:
    """The request's session, while the token that opened it is still valid."""
    sessions = sessions_of(request)
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    tokens = daemon_of(request).store.token_hashes()
    if not any(
        hmac.compare_digest(row.token_hash, session.token_hash) and row.revoked_at is None
        for row in tokens
    ):
        sessions.drop(session)
        return None
    return session


def to_login(request: Request) -> RedirectResponse:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"{HOME}/login?next={quote(wanted, safe='')}")


def safe_next(value: str | None) -> str:
    """Only dashboard paths on this host: never an open redirect."""
    if value and value.startswith(HOME) and "//" not in value and "\\" not in value:
        return value
    return HOME


def guarded(request: Request, build: Callable[[Session, Daemon], HTMLResponse]) -> Response:
    """A page for a signed-in session; a TempsError becomes the message of an error page."""
    session = current_session(request)
    if session is None:
        return to_login(request)
    try:
        return build(session, daemon_of(request))
    except TempsError as error:
        status, _ = status_for(error)
        return refused(session, str(error), status)


def refused(session: Session, message: str, status: int) -> HTMLResponse:
    page = frame(session, "Error", [("Apps", HOME), ("Error", None)])
    return html(page, pages.error_page(message, HOME), status)


async def read_form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass(frozen=True)
class Post:
    session: Session
    form: dict[str, str]


async def checked_post(request: Request) -> Post | Response:
    """The session and form of an action POST, or the answer that refuses it."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return to_login(request)
    try:
        form = await read_form(request)
    except InvalidInput as error:
        return refused(session, str(error), 413)
    if not session.csrf_ok(form.get("csrf")):
        message = "This form has expired or did not come from this dashboard. Try again."
        return refused(session, message, 403)
    return Post(session, form)
