"""The FastAPI application: API, git and health, around one assembled Daemon."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import structlog
from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from pipeline import memory, metrics
from pipeline.errors import TempsError
from pipeline.settings import Settings
from pipeline.supervision.census import Census
from pipeline.traefik.homefile import proxy_secret
from receiver import problems
from receiver.api import actions as api_actions
from receiver.api import apps as api
from receiver.api import backups as api_backups
from receiver.api import build as api_build
from receiver.api import canary as api_canary
from receiver.api import certificates as api_certificates
from receiver.api import cron as api_cron
from receiver.api import domains as api_domains
from receiver.api import formation as api_formation
from receiver.api import logs as api_logs
from receiver.api import maintenance as api_maintenance
from receiver.api import nodes as api_nodes
from receiver.api import previews as api_previews
from receiver.api import registries as api_registries
from receiver.api import runs as api_runs
from receiver.api import series as api_series
from receiver.api import statuses as api_statuses
from receiver.api import storage as api_storage
from receiver.api import tokens as api_tokens
from receiver.api import webhooks as webhook_routes
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.dashboard import routes as dashboard
from receiver.git import routes as git_routes
from receiver.limits import BodyLimit
from receiver.proxied import ControlProxyHeaders
from receiver.waits import waiting

log = structlog.get_logger()


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            daemon = Daemon.assemble(settings)
            await run_in_threadpool(daemon.start)
        except TempsError as exc:
            # uvicorn then exits non-zero; the reason is the line the operator needs.
            log.error("daemon.start_failed", error=str(exc))
            print(f"temps: {exc}", file=sys.stderr, flush=True)
            raise
        app.state.daemon = daemon
        memory.settle()
        yield
        daemon.stop()

    app = FastAPI(title="temps", version="0.1.0", lifespan=lifespan)
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    if settings.control_host:
        app.add_middleware(ControlProxyHeaders, secret=lambda: proxy_secret(settings))
    faces = (api, api_actions, api_logs, api_domains, api_certificates, api_storage,
             api_formation, api_nodes, api_canary, api_runs, api_maintenance, api_previews,
             api_tokens, api_build, api_registries, api_statuses, api_backups, api_cron, api_series,
             webhook_routes,
             git_routes, dashboard)  # fmt: skip
    for face in faces:
        app.include_router(face.router)

    scraped = metrics.registry_for(_gauges(lambda: app.state.daemon))

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics_page() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(scraped), media_type=metrics.CONTENT_TYPE)

    @app.get("/healthz", responses={503: {"model": Health, "description": "a component is down"}})
    async def healthz(answer: Response) -> Health:
        # Its checks wait on Docker and Traefik, which may hang: not on the API's threads.
        health = await waiting(_health, app.state.daemon)
        if health.status != "ok":
            answer.status_code = 503
        return health

    return app


def _gauges(daemon_of: Callable[[], Daemon]) -> list[metrics.Gauge | metrics.LabelledGauge]:
    """What /metrics reads from the running daemon each time it is scraped."""
    return [
        metrics.Gauge(
            "temps_queue_depth",
            "Deploys running or waiting.",
            lambda: daemon_of().deployer.queue_depth(),
        ),
        metrics.Gauge(
            "temps_traefik_up",
            "1 when the managed Traefik answers /ping.",
            lambda: float(daemon_of().proxy.ready()),
        ),
        metrics.Gauge(
            "temps_traefik_restarts",
            "Restarts of the managed Traefik.",
            lambda: daemon_of().proxy.restarts,
        ),
        metrics.Gauge(
            "temps_log_tails",
            "Clients following an app's logs (`temps logs --tail`, the dashboard).",
            lambda: daemon_of().tails.count,
        ),
        metrics.Gauge(
            "temps_log_streams",
            "Container log streams open for those clients.",
            lambda: daemon_of().tails.streams,
        ),
        metrics.LabelledGauge(
            "temps_app_containers_missing",
            "Containers of each app's live formation that should run and do not (a process "
            "type stopped on purpose counts none), as the supervisor last counted them.",
            ("app",),
            lambda: _missing(daemon_of().supervisor.census),
        ),
        metrics.LabelledGauge(
            "temps_app_containers_running",
            "Containers of each app's live formation running, by process type.",
            ("app", "process"),
            lambda: _running(daemon_of().supervisor.census),
        ),
    ]


def _missing(census: Mapping[str, Census]) -> list[tuple[Sequence[str], float]]:
    return [((app,), sum(c.missing for c in counts.values())) for app, counts in census.items()]


def _running(census: Mapping[str, Census]) -> list[tuple[Sequence[str], float]]:
    return [
        ((app, process), count.running)
        for app, counts in census.items()
        for process, count in counts.items()
    ]


class Health(View):
    status: Literal["ok", "degraded"]  # degraded: one of the three checks failed
    database: bool
    traefik: bool
    docker: bool
    traefik_restarts: int
    queue_depth: int  # deploys running or waiting


def _health(daemon: Daemon) -> Health:
    database, traefik = daemon.store.answers(), daemon.proxy.ready()
    docker = daemon.runtime.ping()
    return Health(
        status="ok" if database and traefik and docker else "degraded",
        database=database,
        traefik=traefik,
        docker=docker,
        traefik_restarts=daemon.proxy.restarts,
        queue_depth=daemon.deployer.queue_depth(),
    )
