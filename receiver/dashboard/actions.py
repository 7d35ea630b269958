"""Dashboard actions: rollback and redeploy, which start a deploy, and maintenance on or off.
Each is a confirmation page and a POST that carries the session's CSRF token. A refusal from
the pipeline comes back as a message on the app's page; a started deploy opens the new
release's page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from pipeline.deploy import operations
from pipeline.errors import InvalidInput, TempsError
from pipeline.hosting import sites
from pipeline.sqlite.models import Release
from receiver.api.apps import QueryNumber, daemon_of
from receiver.daemon import Daemon
from receiver.dashboard import pages, web
from receiver.dashboard.formats import path, short_sha
from receiver.dashboard.session import Session

router = APIRouter(include_in_schema=False)


def _confirm(
    session: Session,
    name: str,
    action: str,
    verb: str,
    question: str,
    details: list[str],
    **form: str,
) -> HTMLResponse:
    """The page that asks before `action` of app `name` starts (`verb`: "Roll back"); the
    button says `submit` when given, else the verb, and `form` goes with the POST."""
    submit = form.pop("submit", verb)
    body = pages.confirm_page(
        question=question,
        details=details,
        action=path("apps", name, action),
        csrf=session.csrf,
        fields=form,
        submit=submit,
        cancel=path("apps", name),
    )
    crumbs = [("Apps", web.HOME), (name, path("apps", name)), (verb, None)]
    return web.html(web.frame(session, f"{verb} {name}", crumbs), body)


@router.get("/dashboard/apps/{name}/rollback")
def rollback_confirm(name: str, request: Request, release: QueryNumber) -> Response:
    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        app = daemon.store.get_app(name)
        target = daemon.store.release_by_number(app, release)
        live = daemon.store.live_release(app)
        details = [
            f"This creates a new release of {name} that reuses the image and configuration of "
            f"v{target.number} ({_source_of(target)}): no rebuild.",
            "It goes through the same health gate and switch as any deploy; "
            + (f"v{live.number} keeps serving until then." if live else "nothing is live now."),
        ]
        question = f"Roll back {name} to v{target.number}?"
        number, submit = str(target.number), f"Roll back to v{target.number}"
        return _confirm(
            session, name, "rollback", "Roll back", question, details, release=number, submit=submit
        )

    return web.guarded(request, build)


@router.post("/dashboard/apps/{name}/rollback")
async def rollback(name: str, request: Request) -> Response:
    post = await web.checked_post(request)
    if isinstance(post, Response):
        return post
    daemon = daemon_of(request)
    number = post.form.get("release", "")

    def start() -> Release:
        if not number.isdigit():
            raise InvalidInput("choose the release to roll back to")
        return operations.rollback(daemon.deployer, daemon.store.get_app(name), int(number))

    return await _start_deploy(post.session, name, f"Rollback to v{number}", start)


@router.get("/dashboard/apps/{name}/redeploy")
def redeploy_confirm(name: str, request: Request) -> Response:
    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        live = daemon.store.live_release(daemon.store.get_app(name))
        what = f"the live commit {short_sha(live.commit)}" if live else "the newest commit"
        if live and live.pulled:
            what = f"the live image {live.pulled}"
        details = [
            f"This deploys {what} again as a new release, rebuilding it only if its image "
            "is gone, through the same health gate and switch.",
            "The app's current environment applies to the new release.",
        ]
        return _confirm(session, name, "redeploy", "Redeploy", f"Redeploy {name}?", details)

    return web.guarded(request, build)


@router.post("/dashboard/apps/{name}/redeploy")
async def redeploy(name: str, request: Request) -> Response:
    post = await web.checked_post(request)
    if isinstance(post, Response):
        return post
    daemon = daemon_of(request)

    def start() -> Release:
        return operations.redeploy(daemon.deployer, daemon.store.get_app(name), None, None)

    return await _start_deploy(post.session, name, "Redeploy", start)


async def _start_deploy(
    session: Session, name: str, what: str, start: Callable[[], Release]
) -> Response:
    """Run `start` off the event loop; on to the new release's page, or back with the reason."""
    try:
        release = await run_in_threadpool(start)
    except TempsError as error:
        session.flash("error", f"{what} refused: {error}")
        return web.redirect(path("apps", name))
    session.flash("ok", f"{what} started as v{release.number}.")
    return web.redirect(path("apps", name, "releases", release.number))


def _source_of(release: Release) -> str:
    """What a release was made from, in words: its commit, or the image it pulled."""
    return f"image {release.pulled}" if release.pulled else f"commit {short_sha(release.commit)}"


@router.get("/dashboard/apps/{name}/maintenance")
def maintenance_confirm(name: str, request: Request) -> Response:
    def build(session: Session, daemon: Daemon) -> HTMLResponse:
        app = daemon.store.get_app(name)
        if app.in_maintenance:
            question = f"End maintenance of {name}?"
            details = ["Its hosts are served by its live release again, from the next request."]
            return _confirm(
                session, name, "maintenance", "End maintenance", question, details, on="off"
            )
        details = [
            f"Every host of {name} answers 503 with Retry-After and the maintenance.html of "
            "its live commit (a plain page when it has none), from the next request.",
            "Its containers keep running, and deploys go on behind the page until it ends.",
        ]
        question = f"Put {name} in maintenance?"
        return _confirm(session, name, "maintenance", "Maintenance", question, details, on="on")

    return web.guarded(request, build)


@router.post("/dashboard/apps/{name}/maintenance")
async def maintenance(name: str, request: Request) -> Response:
    post = await web.checked_post(request)
    if isinstance(post, Response):
        return post
    daemon = daemon_of(request)
    on = post.form.get("on") == "on"

    def switch() -> None:
        app = daemon.store.get_app(name)
        daemon.destroyer.ctx.destroying.refuse(name)
        sites.set_maintenance(daemon.settings, daemon.store, app, on)

    try:
        await run_in_threadpool(switch)
    except TempsError as error:
        post.session.flash("error", f"Maintenance {'on' if on else 'off'} refused: {error}")
        return web.redirect(path("apps", name))
    message = "is in maintenance: its hosts answer 503" if on else "is served by its live release"
    post.session.flash("ok", f"{name} {message}.")
    return web.redirect(path("apps", name))
