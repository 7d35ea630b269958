"""The daemon's own metrics, rendered in Prometheus' text format (no client library needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

LabelValues = tuple[str, ...]
_lock = threading.Lock()


def _labels(names: tuple[str, ...], values: LabelValues, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with _lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with _lock:
            for values, number in sorted(self._values.items()):
                yield f"{self.name}{_labels(self.label_names, values)} {number:g}"


class Histogram:
    def __init__(
        self, name: str, help_text: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self.buckets = buckets
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        with _lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
            counts[-1] += 1
            self._sums[labels] = self._sums.get(labels, 0.0) + value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with _lock:
            for values, counts in sorted(self._counts.items()):
                for bound, count in zip(self.buckets, counts, strict=False):
                    le = _labels(self.label_names, values, f'le="{bound:g}"')
                    yield f"{self.name}_bucket{le} {count}"
                inf = _labels(self.label_names, values, 'le="+Inf"')
                yield f"{self.name}_bucket{inf} {counts[-1]}"
                plain = _labels(self.label_names, values)
                yield f"{self.name}_sum{plain} {self._sums[values]:g}"
                yield f"{self.name}_count{plain} {counts[-1]}"


class Gauge:
    """A value read when scraped."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.read = name, help_text, read

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {self.read():g}"


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


def render(gauges: list[Gauge]) -> str:
    lines: list[str] = []
    registry: list[Counter | Histogram | Gauge] = [
        deploys,
        step_seconds,
        health_probes,
        switch_seconds,
        *gauges,
    ]
    for metric in registry:
        lines.extend(metric.render())
    return "\n".join(lines) + "\n"
