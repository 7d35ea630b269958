"""Destroying an app (`temps apps destroy`): nothing of it is left afterwards, and nothing of
another app is touched.

1. **Mark**: the app's row says it is being destroyed, synced to disk before anything goes.
   From then on nothing new starts for it (`Context.destroying`): a push, a deploy, a scale
   or any other change of it is refused (409), and the supervisor leaves it alone.
2. **Cancel**: its waiting deploys fail; the running one stops before its next step, or
   finishes the switch it began; the destroy waits until its lane is idle.
3. **Withdraw**: its routers and service leave Traefik in one change, confirmed; its hosts
   answer 404, as any host Traefik does not know.
4. **Drain and stop** every container of the app, all at once, each bounded by its own
   release's `drain_timeout` and `stop_timeout`: the requests in flight finish.
5. **Remove** its images, its named volumes when asked (otherwise they are kept and named),
   the certificates uploaded for its hosts, its repository.
6. **Forget**: its records, in one transaction, the mark with them.

An app's previews (`pipeline.previews`) are destroyed the same way before it.

Every step can run again, finding done what was done: a daemon stopped half-way finds the
mark at its next start and finishes (`Destroyer.resume`); a destroy that failed (Docker or
Traefik away) is finished by the next DELETE of the app, or the next start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from pipeline.context import Context
from pipeline.deploy.queue import Deployer
from pipeline.errors import Conflict, TempsError
from pipeline.git import repo as gitrepo
from pipeline.hosting import sites, uploads
from pipeline.polling import poll_until
from pipeline.sqlite.models import App
from pipeline.sqlite.teardown import Erased
from pipeline.steps.retire import DELIBERATE_DRAIN_SECONDS as LAST_DRAIN
from pipeline.steps.retire import drain_and_stop
from pipeline.supervision.reconcile import leaving_of
from pipeline.traefik import publish

log = structlog.get_logger()

# Beyond --build-timeout, what else a running deploy may take to reach its next step: the
# release phase, the gate, the drain of a switch it began.
DEPLOY_WAIT_SLACK = 900.0
# The app's old slots already draining in the background end within their own bounds; this
# only bounds one that hangs, whose container is then drained and stopped here as well.
RETIREMENTS_WAIT = 600.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Destroyed:
    """What a destroy removed, and what it kept on purpose."""

    app: str
    containers: tuple[str, ...]  # drained, stopped and removed
    images: tuple[str, ...]  # tags
    certificates: tuple[str, ...]  # hosts whose uploaded certificate was removed
    volumes_removed: tuple[str, ...]
    volumes_kept: tuple[str, ...]  # with their data: asked to keep them
    repository: bool
    erased: Erased


class Destroyer:
    """The destroys under way, one per app: a second DELETE of the app waits for the one
    running, and the daemon's start resumes those a stopped daemon left."""

    def __init__(self, ctx: Context, deployer: Deployer, deploy_wait: float | None = None):
        self.ctx = ctx
        self.deployer = deployer
        if deploy_wait is None:
            deploy_wait = ctx.settings.build_timeout + DEPLOY_WAIT_SLACK
        self.deploy_wait = deploy_wait
        self._runs: dict[str, Future[Destroyed]] = {}
        self._guard = threading.Lock()

    def destroy(self, name: str, volumes: bool) -> Destroyed:
        """Destroy the app (its named volumes too, with `volumes`), or wait for the destroy
        of it already running; its outcome."""
        return self.start(name, volumes).result()

    def marked(self) -> list[str]:
        """At start, before anything is routed or supervised: the apps a stopped daemon was
        destroying, closed from now on."""
        names = [app.name for app in self.ctx.store.teardown.marked()]
        for name in names:
            self.ctx.destroying.add(name)
        return names

    def resume(self, name: str) -> None:
        """Finish, in the background, the destroy of an app `marked` found."""
        self.start(name, False)

    def start(self, name: str, volumes: bool) -> Future[Destroyed]:
        """Start destroying the app in the background (or join the destroy of it running)."""
        with self._guard:
            running = self._runs.get(name)
            if running is not None:
                if volumes:  # heard if the running destroy has not reached the volumes yet
                    self.ctx.store.teardown.mark(name, volumes)
                return running
            app = self.ctx.store.teardown.mark(name, volumes)
            self.ctx.store.make_durable()  # the mark outlives whatever is removed next
            self.ctx.destroying.add(name)
            running = self._runs[name] = Future()
        threading.Thread(
            target=self._run, args=(app, running), name=f"destroy-{name}", daemon=True
        ).start()
        return running

    def _run(self, app: App, running: Future[Destroyed]) -> None:
        outcome: Destroyed | BaseException
        try:
            # Its previews first: their repositories read the app's objects.
            for preview in self.ctx.store.previews.of(app):
                self.start(preview.name, False).result()
            outcome = destroy(self.ctx, self.deployer, app, self.deploy_wait)
        except TempsError as exc:
            log.error("destroy.failed", app=app.name, error=str(exc))
            outcome = exc
        except Exception as exc:
            log.exception("destroy.crashed", app=app.name)
            outcome = exc
        with self._guard:
            self._runs.pop(app.name, None)  # the next DELETE starts over from the mark
        if isinstance(outcome, BaseException):
            running.set_exception(outcome)
        else:
            running.set_result(outcome)


def destroy(ctx: Context, deployer: Deployer, app: App, deploy_wait: float) -> Destroyed:
    """The story, on a marked app."""
    told = log.bind(app=app.name)
    told.info("destroy.started", volumes=app.destroy_volumes)
    cancel_deploys(deployer, app.name, deploy_wait)
    with ctx.slot_locks.of(app.name):  # no scale, flip back or restore meanwhile
        site = sites.site_of(ctx.settings, ctx.store, app)
        publish.withdraw(ctx.settings, site)
        told.info("destroy.withdrawn", hosts=list(site.hosts))
        containers = stop_containers(ctx, app.name, told.info)
        images = tuple(ctx.runtime.prune_images(app.name, set()))
        removed, kept = volumes_of(ctx, app.name)
        certificates = tuple(uploads.discard_hosts(ctx.settings, ctx.store, site.hosts))
        repository = gitrepo.remove_bare(ctx.settings.repo_path(app.name))
        erased = ctx.store.teardown.erase(app, site.hosts)
    ctx.journal.forget(erased.release_ids)
    ctx.canary_calls.take(app.name)
    ctx.destroying.discard(app.name)
    told.info(
        "destroy.finished",
        containers=len(containers),
        images=len(images),
        releases=len(erased.release_ids),
        volumes_kept=list(kept),
    )
    return Destroyed(app.name, containers, images, certificates, removed, kept, repository, erased)


def cancel_deploys(deployer: Deployer, app: str, timeout: float) -> None:
    """Its waiting deploys fail; the running one stops before its next step. Raises Conflict
    when one still runs after `timeout` (the destroy goes on at its next try)."""
    deployer.cancel(app)
    if not poll_until(lambda: deployer.idle(app), timeout, POLL_SECONDS):
        raise Conflict(
            f"a deploy of {app!r} still runs after {timeout:g}s; the destroy goes on at the "
            "next DELETE of the app or the next start of the daemon"
        )


def stop_containers(ctx: Context, app: str, say: Callable[..., object]) -> tuple[str, ...]:
    """Drain and stop every container of the app (out of Traefik already), all at once."""
    ctx.retirements.hurry(app)  # a leaving slot's long-lived connections go now
    ctx.retirements.wait(app, RETIREMENTS_WAIT)
    found = ctx.runtime.containers(app)
    leaving = [leaving_of(ctx, container)[0] for container in found]

    def tell(text: str) -> None:
        say("destroy.step", line=text.removeprefix("-----> "))

    if leaving:
        with ThreadPoolExecutor(len(leaving), thread_name_prefix="destroy-drain") as pool:
            list(pool.map(lambda one: drain_and_stop(ctx, one.within(LAST_DRAIN), tell), leaving))
    return tuple(sorted(container.name for container in found))


def volumes_of(ctx: Context, app: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(removed, kept): the app's named volumes go only when its mark asks (read now: a
    second DELETE may have asked meanwhile)."""
    names = tuple(ctx.runtime.volumes(app))
    if not ctx.store.get_app(app).destroy_volumes:
        return (), names
    for name in names:
        ctx.runtime.remove_volume(name)
    return names, ()
