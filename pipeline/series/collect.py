"""The periodic reader of Traefik's access log into each app's series buckets.

Every `series_interval` seconds: the lines written since the last look (a few MiB at a
time), summed per app and bucket by the hosts each app serves, with the web containers the
supervisor saw restart; added to the store and to each app's request counters on /metrics,
and only then the log's position remembered (a crash in between counts a few seconds twice
rather than losing them). Buckets older than `series_retention` are forgotten once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from pipeline import metrics
from pipeline.hosting import sites
from pipeline.series.buckets import CLASSES, Bucket, Key, aggregate, floor
from pipeline.series.reader import AccessLogReader
from pipeline.settings import Settings
from pipeline.sqlite.store import Store
from pipeline.supervision.periodic import Periodic

log = structlog.get_logger()
FORGET_EVERY = 60.0
MAX_READS = 64  # reads of `reader.MAX_READ_BYTES` in one check, at most

Restarts = Callable[[], dict[str, int]]  # web containers restarted per app since last asked


def count_requests(buckets: dict[Key, Bucket]) -> None:
    """The requests read, added to each app's counters on /metrics."""
    for (app, _), bucket in buckets.items():
        for name, count in zip(CLASSES, bucket.classes, strict=True):
            if count:
                metrics.app_requests.inc(app, name, amount=count)


class SeriesCollector(Periodic):
    name = "series"

    def __init__(self, settings: Settings, store: Store, restarts: Restarts) -> None:
        super().__init__(settings.series_interval)
        self.settings = settings
        self.store = store
        self.restarts = restarts
        self.reader = AccessLogReader(settings.access_log, settings.series_position_path)
        self._forgotten_at = 0.0

    def check(self) -> None:
        apps_by_host = {
            host: name
            for name, site in sites.every_site(self.settings, self.store).items()
            for host in site.hosts
        }
        now = time.time()
        restarts = {(app, floor(now)): count for app, count in self.restarts().items()}
        # A read at a time, each stored before the next: a backlog (a daemon that was
        # stopped, a burst) is caught up in this check without holding it all in memory.
        for _ in range(MAX_READS):
            entries = self.reader.read()
            buckets = aggregate(entries, apps_by_host)
            count_requests(buckets)
            for key, count in restarts.items():
                buckets.setdefault(key, Bucket()).restarts += count
            restarts = {}
            self.store.series.add(buckets)
            self.reader.save()
            if not self.reader.more:
                break
        if now - self._forgotten_at >= FORGET_EVERY:
            self.forget(now)

    def forget(self, now: float) -> None:
        gone = self.store.series.forget(now - self.settings.series_retention)
        self._forgotten_at = now
        if gone:
            log.info("series.forgotten", buckets=gone)
