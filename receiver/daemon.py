"""The daemon's parts, assembled once at start and passed to the routes."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from pipeline.app.sealing import Sealer, reseal
from pipeline.applogs.tail import TailLimits, Tails
from pipeline.backends.opener import open_runtime
from pipeline.backups import backup
from pipeline.backups.kit import BackupKit
from pipeline.context import Context
from pipeline.cron.scheduler import Scheduler
from pipeline.deploy.destroy import Destroyer
from pipeline.deploy.queue import Deployer
from pipeline.homelock import HomeLock
from pipeline.hosting import sites
from pipeline.hosting.https import CertificateWatch
from pipeline.previews.expiry import PreviewExpiry
from pipeline.release.journal import Journal
from pipeline.runs import oneoff
from pipeline.runs.inflight import InFlight
from pipeline.runtime import Runtime
from pipeline.series.collect import SeriesCollector
from pipeline.settings import Settings
from pipeline.sqlite.schema import migrate_in_child
from pipeline.sqlite.store import Store, make_engine
from pipeline.steps.skew import still_kept
from pipeline.supervision.reconcile import reconcile
from pipeline.supervision.skew import SkewExpiry
from pipeline.supervision.supervise import Supervisor
from pipeline.traefik import routes
from pipeline.traefik.process import ManagedTraefik
from receiver.auth import FailureLimiter, ensure_admin_token

log = structlog.get_logger()
STATUS_GRACE_SECONDS = 5.0


@dataclass
class Daemon:
    settings: Settings
    store: Store
    journal: Journal
    runtime: Runtime
    deployer: Deployer
    proxy: ManagedTraefik
    limiter: FailureLimiter
    certificates: CertificateWatch
    supervisor: Supervisor
    destroyer: Destroyer
    expiry: PreviewExpiry  # previews idle past their ttl
    tails: Tails  # `temps logs --tail` clients
    runs: InFlight  # one-off runs in flight
    backups: BackupKit  # backups and restores (pipeline/backups)
    cron: Scheduler  # every app's [[cron]] entries
    skew: SkewExpiry  # releases kept for skew protection, let go when their time is over
    series: SeriesCollector  # the access log into each app's series

    home_lock: HomeLock

    @classmethod
    def assemble(cls, settings: Settings) -> Daemon:
        settings.make_dirs()
        home_lock = HomeLock.take(settings.lock_path)
        migrate_in_child(settings.db_url)
        store = Store(make_engine(settings.db_url, settings.records_busy_seconds))
        store.warm()
        journal = Journal(store, settings.max_log_lines, settings.max_log_bytes)
        runtime = open_runtime(settings)
        sealer = Sealer.from_key_file(settings.secret_key_path)
        ctx = Context(
            settings,
            store,
            journal,
            runtime,
            sealer,
            threading.Semaphore(settings.build_concurrency),
        )
        limiter = FailureLimiter(settings.auth_failures_allowed, settings.auth_failure_window)
        deployer = Deployer(ctx)
        destroyer = Destroyer(ctx, deployer)
        backups = BackupKit.of(ctx)
        supervisor = Supervisor(ctx)
        return cls(
            settings,
            store,
            journal,
            runtime,
            deployer,
            ManagedTraefik(settings),
            limiter,
            CertificateWatch(settings, store, sealer),
            supervisor,
            destroyer,
            PreviewExpiry(settings, store, destroyer),
            Tails(
                runtime,
                store,
                settings.log_tail_interval,
                TailLimits(settings.max_log_tails, settings.max_log_tails_per_app),
            ),
            InFlight(
                settings.max_runs_per_app,
                settings.run_attach_timeout,
                lambda ticket: oneoff.expired(ctx, ticket),
            ),
            backups,
            Scheduler(ctx, backup=lambda app: backup.scheduled(backups, app)),
            SkewExpiry(ctx),
            SeriesCollector(settings, store, supervisor.take_restarts),
            home_lock,
        )

    def start(self) -> None:
        ensure_admin_token(self.settings, self.store)
        resealed = reseal(self.store, self.deployer.ctx.sealer)
        if resealed:
            log.info("daemon.values_resealed", count=resealed)
        # Their containers are orphans now, which reconcile() removes.
        interrupted = self.store.runs.interrupt_unfinished()
        if interrupted:
            log.warning("daemon.runs_interrupted", count=interrupted)
        cut_short = self.store.backups.interrupt_unfinished()
        if cut_short:
            log.warning("daemon.backups_interrupted", count=cut_short)
        interrupted = self.store.cron.interrupt_unfinished()
        if interrupted:
            log.warning("daemon.cron_runs_interrupted", count=interrupted)
        # Apps a stopped daemon was destroying: closed before anything routes or supervises,
        # out of the route table from the start, destroyed once the daemon runs.
        destroying = self.destroyer.marked()
        served = sites.every_site(self.settings, self.store)
        for name in destroying:
            served.pop(name, None)
        # Kept releases whose time ran out while the daemon was away are let go: their
        # containers are orphans for reconcile(). The others are routed with their time left.
        removed = routes.tidy(self.settings, served, still_kept(self.deployer.ctx))
        if removed:
            log.info("traefik.stray_files_removed", files=removed)
        self.proxy.start()
        pids, shares = self.settings.build_pids, self.settings.build_cpu_shares
        if (pids or shares) and self.runtime.fence_builds(pids, shares):
            log.info("build.fenced", max_pids=pids, cpu_shares=shares)
        reconcile(self.deployer.ctx)
        # What the records say runs is running (or being started) before the daemon serves.
        self.supervisor.check_now()
        self.certificates.start()
        self.supervisor.start()
        self.expiry.start()
        self.skew.start()
        self.cron.start()
        self.series.start()
        self.runtime.watch(self.supervisor.wake)
        for name in destroying:
            log.info("destroy.resumed", app=name)
            self.destroyer.resume(name)
        log.info(
            "daemon.started",
            listen=str(self.settings.listen),
            http=str(self.settings.http),
            home=str(self.settings.home),
        )

    def stop(self, deploy_grace: float = 20.0) -> None:
        # Running deploys get a moment to reach live or fail; the rest is marked interrupted at
        # the next start. Traefik keeps serving the live releases while the daemon is away.
        if not self.deployer.shutdown(deploy_grace):
            log.warning("daemon.deploys_cut_short", queue_depth=self.deployer.queue_depth())
        # The commit statuses of the deploys that just ended get a moment to go out.
        if not self.deployer.ctx.statuses.wait_idle(STATUS_GRACE_SECONDS):
            log.warning("daemon.statuses_cut_short")
        self.cron.stop()
        self.series.stop()
        self.tails.close_all()
        self.proxy.stop_watching()
        self.certificates.stop()
        self.supervisor.stop()
        self.expiry.stop()
        self.skew.stop()
        self.store.close()
        self.home_lock.release()
        log.info("daemon.stopped")
