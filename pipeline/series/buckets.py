"""Access-log entries summed per app in fixed buckets: requests by status class, a latency
histogram, and the web containers that restarted.

A bucket is keyed by the time its requests started, floored to `BUCKET_SECONDS`. Buckets are
added to, never replaced: the collector may see a bucket's requests over two reads (Traefik
writes a line when a request ends), and the sums stay right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.series import histogram
from pipeline.traefik.traffic import REDIRECT_ROUTER, Entry

BUCKET_SECONDS = 10
CLASSES = ("2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> int:
    """The index in CLASSES of a status: 1xx (a WebSocket's 101) counts as 2xx, and Traefik's
    0 (the client left before an answer) as 5xx, as the traffic report counts it an error."""
    if 300 <= status < 400:
        return 1
    if 400 <= status < 500:
        return 2
    if status >= 500 or status == 0:
        return 3
    return 0


@dataclass
class Bucket:
    classes: list[int] = field(default_factory=lambda: [0] * len(CLASSES))
    latency: list[int] = field(default_factory=histogram.empty)
    restarts: int = 0

    @property
    def requests(self) -> int:
        return sum(self.classes)

    def add(self, status: int, seconds: float) -> None:
        self.classes[status_class(status)] += 1
        # Rounded: a duration taken as the difference of two epochs is off by some ns.
        self.latency[histogram.bin_of(round(seconds * 1000, 3))] += 1

    def add_bucket(self, other: Bucket) -> None:
        for index, count in enumerate(other.classes):
            self.classes[index] += count
        for index, count in enumerate(other.latency):
            self.latency[index] += count
        self.restarts += other.restarts


Key = tuple[str, int]  # (app, the bucket's start)


def floor(at: float, seconds: int = BUCKET_SECONDS) -> int:
    return int(at // seconds) * seconds


def aggregate(entries: Iterable[Entry], apps_by_host: Mapping[str, str]) -> dict[Key, Bucket]:
    """The entries of the apps' hosts by (app, bucket); another host's, and the redirects to
    HTTPS that never reached an app, are left out as the traffic report leaves them."""
    buckets: dict[Key, Bucket] = {}
    for entry in entries:
        app = apps_by_host.get(entry.host)
        if app is None or entry.router.endswith(REDIRECT_ROUTER):
            continue
        key = (app, floor(entry.started))
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = Bucket()
        bucket.add(entry.status, entry.ended - entry.started)
    return buckets
