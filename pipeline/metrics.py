"""The daemon's own metrics, served at /metrics.

prometheus_client: the reference client, so the text format, escaping and histogram
buckets are the ones every scraper is tested against.

The counters and histograms live for the process and are registered in no global registry:
each daemon's /metrics renders a registry of its own (`registry_for`) that holds them and
the values read from that daemon when it is scraped. Call sites keep one small API,
`inc(*labels)` and `observe(value, *labels)`, whatever the client library calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# The text format scrapers are sent (prometheus_client's own default moved to a newer one).
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_PLAIN_0_0_4

# A `_created` series beside every counter and histogram would double the output for a
# timestamp nobody graphs; /metrics has never carried it.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.collector = prometheus_client.Counter(name, help_text, labels, registry=None)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        (self.collector.labels(*labels) if labels else self.collector).inc(amount)


class Histogram:
    def __init__(
        self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        self.collector = prometheus_client.Histogram(
            name, help_text, labels, registry=None, buckets=buckets
        )

    def observe(self, value: float, *labels: str) -> None:
        (self.collector.labels(*labels) if labels else self.collector).observe(value)


class Gauge(NamedTuple):
    """A value read when scraped."""

    name: str
    help: str
    read: Callable[[], float]


class LabelledGauge(NamedTuple):
    """Values read when scraped, one per set of label values (an app, say)."""

    name: str
    help: str
    labels: tuple[str, ...]
    read: Callable[[], Iterable[tuple[Sequence[str], float]]]


class _Readings(Collector):
    def __init__(self, gauges: Iterable[Gauge | LabelledGauge]) -> None:
        self._gauges = tuple(gauges)

    def collect(self) -> Iterable[Metric]:
        for gauge in self._gauges:
            if isinstance(gauge, Gauge):
                yield GaugeMetricFamily(gauge.name, gauge.help, value=gauge.read())
                continue
            family = GaugeMetricFamily(gauge.name, gauge.help, labels=gauge.labels)
            for values, reading in gauge.read():
                family.add_metric(list(values), reading)
            yield family


STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

deploys = Counter("temps_deploys_total", "Deploys by app and outcome.", ("app", "outcome"))
step_seconds = Histogram(
    "temps_deploy_step_seconds", "Time spent in each deploy step.", STEP_BUCKETS, ("step",)
)
health_probes = Counter("temps_health_probes_total", "Health gate probes by result.", ("result",))
switch_seconds = Histogram(
    "temps_switch_seconds",
    "From publishing a Traefik route to its confirmation through Traefik.",
    (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
app_requests = Counter(
    "temps_app_requests_total",
    "Requests Traefik answered for each app, by status class, read from its access log.",
    ("app", "class"),
)
_SHARED = (deploys, step_seconds, health_probes, switch_seconds, app_requests)


def registry_for(gauges: Iterable[Gauge | LabelledGauge]) -> CollectorRegistry:
    """One daemon's metrics: the process's counters and histograms, then its own gauges."""
    registry = CollectorRegistry(auto_describe=False)
    for metric in _SHARED:
        registry.register(metric.collector)
    registry.register(_Readings(gauges))
    return registry


def render(registry: CollectorRegistry) -> str:
    return prometheus_client.generate_latest(registry).decode()
