"""The graph of one switch: the traffic report's lines, bucket by bucket and by the release
that answered them, from a little before the switch (and the canary's first step) to the
report's end. Made in the report's own scan (`pipeline.traefik.traffic.Sink`), so the graph
and the report's figures add up to the same numbers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from pipeline.release.records import SideSeries, SwitchSeries
from pipeline.traefik.traffic import Entry, percentile

MAX_BUCKETS = 300  # a second each up to five minutes; wider ones beyond
LEAD_SECONDS = 10.0  # shown before the switch at least, beyond the report's `before`
OTHER = "other"  # requests no release answered: Traefik's own 502, 503, 404


class SwitchGraph:
    """Collects the report's entries from `since` to `until` into buckets aligned on
    `switch_at`; `servers` names the release behind each server URL."""

    def __init__(
        self, since: float, switch_at: float, until: float, servers: Mapping[str, str]
    ) -> None:
        span = max(until - min(since, switch_at), 0.0)
        self.step = float(max(1, math.ceil(span / (MAX_BUCKETS - 1))))
        self.switch_at = switch_at
        self.until = until
        self.since = switch_at - math.ceil(max(switch_at - since, 0.0) / self.step) * self.step
        self.count = int((until - self.since) // self.step) + 1
        self.servers = servers
        self._taken: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        self._errors: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, entry: Entry) -> None:
        index = min(int((entry.started - self.since) // self.step), self.count - 1)
        side = self.servers.get(entry.server, OTHER)
        self._taken[side][index].append(entry.ended - entry.started)
        if not 200 <= entry.status < 300:
            self._errors[side][index] += 1

    def record(self) -> SwitchSeries:
        sides = {name: self._side(name) for name in sorted(self._taken)}
        return SwitchSeries(
            start=self.since,
            step=self.step,
            switch_at=self.switch_at,
            until=self.until,
            sides=sides,
        )

    def _side(self, name: str) -> SideSeries:
        taken, errors = self._taken[name], self._errors[name]
        buckets = range(self.count)
        return SideSeries(
            requests=tuple(len(taken.get(i, ())) for i in buckets),
            errors=tuple(errors.get(i, 0) for i in buckets),
            p50_ms=tuple(percentile(taken.get(i, []), 50) for i in buckets),
            p95_ms=tuple(percentile(taken.get(i, []), 95) for i in buckets),
        )
