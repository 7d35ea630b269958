"""The web dashboard: server-rendered pages behind the admin token, signed in with a cookie.

Signing in posts the token once; the cookie then holds only a random session id
(session.py). Pages read the same views as the API (receiver.api.views), a running
release's log is followed through the journal, an app's runtime logs come as the API's
server-sent events (receiver.api.logs), and the actions that start deploys live in
actions.py. Errors from the pipeline come back as a message on a page, not as a
problem document.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse

from pipeline.applogs.lines import DEFAULT_LINES, MAX_LINES
from pipeline.applogs.tail import TailRequest
from pipeline.errors import InvalidInput, RuntimeUnavailable, TempsError, Unauthorized
from pipeline.hosting import sites
from pipeline.series.downsample import RANGES as RANGES_SECONDS
from pipeline.sqlite.models import App
from pipeline.sqlite.store import hash_token
from receiver.api.apps import Number, client_address, daemon_of
from receiver.api.cron import cron_view
from receiver.api.domains import domains_view
from receiver.api.formation import FormationView, formation_view
from receiver.api.logs import TailResponse, open_tail
from receiver.api.previews import previews_view
from receiver.api.series import series_view, window_of
from receiver.api.views import app_view, apps_view, brief_view, release_view
from receiver.auth import guarded_authenticate
from receiver.daemon import Daemon
from receiver.dashboard import actions as dashboard_actions
from receiver.dashboard import pages, web
from receiver.dashboard import release as release_pages
from receiver.dashboard.assets import asset_response
from receiver.dashboard.formats import path
from receiver.dashboard.graphs import RANGES, app_graphs, sparkline
from receiver.dashboard.session import Session, clear_cookie, sessions_of, set_cookie
from receiver.dashboard.templating import part
from receiver.problems import status_for
from receiver.waits import waiting

router = APIRouter(include_in_schema=False)
router.include_router(dashboard_actions.router)

FOLLOW_WAIT = 5.0  # seconds a log request waits for new lines before it answers
HISTORY = 50  # releases listed on an app's page


@router.get("/")
def root() -> RedirectResponse:
    return web.redirect(web.HOME)


@router.get("/dashboard/assets/{name}")
async def asset(name: str, request: Request) -> Response:
    return await asset_response(name, request.scope)


# --- sign in and out ---------------------------------------------------------------------


@router.get("/dashboard/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if web.current_session(request) is not None:
        return web.redirect(web.safe_next(next))
    return web.html(pages.Frame("Sign in"), pages.login_page(web.safe_next(next)))


@router.post("/dashboard/login")
async def login(request: Request) -> Response:
    try:
        form = await web.read_form(request)
    except InvalidInput as error:
        return web.html(pages.Frame("Sign in"), pages.login_page(web.HOME, str(error)), 413)
    next_path = web.safe_next(form.get("next"))
    daemon = daemon_of(request)
    token = form.get("token", "").strip()
    try:
        # Failed attempts count toward the same per-address limit as the API's.
        who = await run_in_threadpool(
            guarded_authenticate,
            daemon.store,
            daemon.limiter,
            client_address(request),
            token,
            request.url.path,
        )
        who.require_admin()
    except TempsError as error:
        status, _ = status_for(error)
        message = "That token is not valid." if isinstance(error, Unauthorized) else str(error)
        return web.html(pages.Frame("Sign in"), pages.login_page(next_path, message), status)
    session_id, _ = sessions_of(request).create(who.name, hash_token(token))
    response = web.redirect(next_path)
    set_cookie(response, request, session_id)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    post = await web.checked_post(request)
    if isinstance(post, Response):
        return post
    sessions_of(request).drop(post.session)
    response = web.redirect(f"{web.HOME}/login")
    clear_cookie(response, request)
    return response


# --- pages -------------------------------------------------------------------------------


@router.get("/dashboard")
def apps_page(request: Request) -> Response:
    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        store, apps = daemon.store, daemon.store.list_apps()
        newest = store.newest_briefs()
        until = int(time.time())
        since = until - RANGES_SECONDS["1h"]
        hours = store.series.requests_since(since)
        rows = [
            (view, brief_view(newest.get(app.pk)), sparkline(hours.get(app.pk, []), since, until))
            for app, view in zip(
                apps, apps_view(store, daemon.settings, daemon.supervisor.census, apps), strict=True
            )
        ]
        body = pages.apps_page(rows, daemon.settings.listen.url)
        return web.html(web.frame(session, "Apps"), body)

    return web.guarded(request, build)


# A plain `def` route: Starlette runs it in its thread pool, so asking Docker about each
# container (formation_view) does not hold up the event loop.
@router.get("/dashboard/apps/{name}")
def app_page(name: str, request: Request, range: str = "1h") -> Response:
    shown = range if range in RANGES else "1h"

    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        app = daemon.store.get_app(name)
        releases = [release_view(daemon.store, r) for r in daemon.store.releases(app, HISTORY)]
        hosts = domains_view(daemon, sites.site_of(daemon.settings, daemon.store, app))
        processes, trouble = _processes(daemon, app)
        view = app_view(daemon.store, daemon.settings, daemon.supervisor.census, app)
        previews = previews_view(daemon, app)
        jobs = cron_view(daemon, app)
        within = window_of(shown, None, None, None, time.time())
        graphs = app_graphs(series_view(daemon.store, app, within))
        body = pages.app_page(
            view, releases, hosts, processes, trouble, previews, jobs, graphs, shown
        )
        page = web.frame(session, name, [("Apps", web.HOME), (name, None)])
        page.scripts.append("dashboard.js")  # the live tail of its logs
        return web.html(page, body)

    return web.guarded(request, build)


def _processes(daemon: Daemon, app: App) -> tuple[FormationView | None, str | None]:
    """The app's formation view, or why Docker could not give it: the rest of the page stands."""
    try:
        return formation_view(daemon, app), None
    except RuntimeUnavailable as error:
        return None, str(error)


@router.get("/dashboard/apps/{name}/logs")
async def app_logs(name: str, request: Request, lines: int = DEFAULT_LINES) -> Response:
    """The app page's live tail: its logs as server-sent events (receiver.api.logs)."""
    if await run_in_threadpool(web.current_session, request) is None:
        return JSONResponse({"detail": "signed out"}, status_code=401)
    wanted = TailRequest(lines=min(max(lines, 0), MAX_LINES), follow=True)
    try:
        tail, first = await run_in_threadpool(open_tail, daemon_of(request), None, name, wanted)
    except TempsError as error:
        return JSONResponse({"detail": str(error)}, status_code=status_for(error)[0])
    return TailResponse(tail, first, events=True)


@router.get("/dashboard/apps/{name}/releases/{number}")
def release_page(name: str, number: Number, request: Request) -> Response:
    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        app = daemon.store.get_app(name)
        release_id = _release_id(daemon, name, number)
        chunk = daemon.journal.follow(release_id, 0, 0.0)
        body = release_pages.release_page(
            app_view(daemon.store, daemon.settings, daemon.supervisor.census, app),
            release_view(daemon.store, daemon.store.get_release(release_id)),
            chunk.lines,
            chunk.position,
            following=not chunk.done,
            now=time.time(),
        )
        crumbs = [("Apps", web.HOME), (name, path("apps", name)), (f"v{number}", None)]
        page = web.frame(session, f"{name} v{number}", crumbs)
        page.scripts.append("dashboard.js")
        return web.html(page, body)

    return web.guarded(request, build)


@router.get("/dashboard/apps/{name}/releases/{number}/log")
async def follow_log(name: str, number: Number, request: Request, position: int = 0) -> Response:
    """Log lines after `position` (waiting a little for some), with the steps so far."""
    return await waiting(_follow_log, name, number, request, position)


def _follow_log(name: str, number: int, request: Request, position: int) -> Response:
    if web.current_session(request) is None:
        return JSONResponse({"detail": "signed out"}, status_code=401)
    daemon = daemon_of(request)
    try:
        release_id = _release_id(daemon, name, number)
    except TempsError as error:
        return JSONResponse({"detail": str(error)}, status_code=status_for(error)[0])
    chunk = daemon.journal.follow(release_id, max(position, 0), FOLLOW_WAIT)
    view = release_view(daemon.store, daemon.store.get_release(release_id))
    body = {
        "lines": chunk.lines,
        "position": chunk.position,
        "done": chunk.done,
        "state": view.state,
        "timeline": part("timeline", release_pages.timeline(view, not chunk.done, time.time())),
        "badge": part("badge", view.state),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/apps/{name}/releases/{number}/log.txt")
def raw_log(name: str, number: Number, request: Request) -> Response:
    if web.current_session(request) is None:
        return web.to_login(request)
    daemon = daemon_of(request)
    try:
        release_id = _release_id(daemon, name, number)
    except TempsError as error:
        return PlainTextResponse(str(error), status_code=status_for(error)[0])
    lines = daemon.journal.follow(release_id, 0, 0.0).lines
    return PlainTextResponse(
        "".join(line + "\n" for line in lines),
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _release_id(daemon: Daemon, name: str, number: int) -> int:
    release = daemon.store.release_by_number(daemon.store.get_app(name), number)
    assert release.id is not None
    return release.id
