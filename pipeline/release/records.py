"""What a release's record keeps beside its columns, typed: its containers (`SlotRecord`), the
figures of its traffic (`TrafficRecord`: the switch, the canary, the drain) and, once replaced,
what of it is kept for the pages it served (`KeptRecord`).

Each is a frozen pydantic model stored as JSON in one column (`pipeline.sqlite.models`) in
the shape the API has always shown, so a stored record, an API answer and a dashboard page
read the same document. A value that is None is left out of the document wherever a record
is dumped (a web entry's `address` off Swarm, the parts of a traffic record not written yet):
`Absent` fields. Unknown keys are ignored: a record written by a newer daemon still loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

from pipeline.runtime import LOOPBACK, Instance, Slot

WEB = "web"
T = TypeVar("T")


def _is_none(value: object) -> bool:
    return value is None


# A value a record may not have: None, and then no key in the record's document.
Absent = Annotated[T | None, Field(exclude_if=_is_none)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Entry(Record):
    """One container of a release. A web one has the `address` and port Traefik reaches it
    at (its address on the home's bridge, a node's on Swarm; none: a port published on
    loopback) and the `endpoint` of the start of it that was gated there.

    The port keeps its first name, `host_port`, from when every container was published on
    the host: records written since read the same, and the API shows the same keys."""

    container: str
    host_port: Absent[int] = None
    address: Absent[str] = None
    endpoint: Absent[str] = None

    @classmethod
    def web(cls, instance: Instance) -> Entry:
        return cls(
            container=instance.container,
            host_port=instance.port,
            address=instance.address if instance.address != LOOPBACK else None,
            endpoint=instance.endpoint or None,
        )

    def instance(self) -> Instance:
        if self.host_port is None:
            raise ValueError(f"{self.container} is not a web container (it has no port)")
        address = self.address or LOOPBACK
        return Instance(self.container, self.host_port, address, self.endpoint or "")


class SlotRecord(RootModel[dict[str, tuple[Entry, ...]]]):
    """A release's containers by process type:
    `{"web": [{"container": ..., "host_port": ...}], "worker": [{"container": ...}]}`."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def of(cls, slot: Slot | None, workers: Mapping[str, list[str]] | None = None) -> SlotRecord:
        web = {WEB: tuple(Entry.web(i) for i in slot.instances)} if slot else {}
        listed = {
            process: tuple(Entry(container=name) for name in names)
            for process, names in (workers or {}).items()
        }
        return cls({**web, **listed})

    @property
    def slot(self) -> Slot | None:
        """The web containers, as the runtime knows them (None before any booted)."""
        web = self.root.get(WEB)
        return Slot(tuple(entry.instance() for entry in web)) if web else None

    @property
    def workers(self) -> dict[str, list[str]]:
        """The background containers by process type."""
        return {
            process: [entry.container for entry in entries]
            for process, entries in self.root.items()
            if process != WEB
        }

    def with_slot(self, slot: Slot) -> SlotRecord:
        """This record with `slot` as its web containers; its workers are kept."""
        return SlotRecord.of(slot, self.workers)

    def with_workers(self, workers: Mapping[str, list[str]]) -> SlotRecord:
        """This record with `workers` as its background processes (none: {})."""
        return SlotRecord.of(self.slot, workers)


class Counts(Record):
    requests: int
    errors: int


class Served(Record):
    """What one side of a canary answered over a step."""

    requests: int
    errors: int
    p50_ms: Absent[float] = None  # None without a sample
    p95_ms: Absent[float] = None
    error_rate: float


class CanaryStep(Record):
    weight: int
    seconds: float
    canary: Served
    live: Served
    passed: bool
    reason: str


Decision = Literal["running", "promoted", "withdrawn"]


class CanaryRecord(Record):
    """The canary's decision and each step's figures; withdrawn, what the canary answered
    from its first request to the withdrawal."""

    decision: Decision
    reason: str
    steps: tuple[CanaryStep, ...]
    requests_until_withdrawn: Absent[int] = None
    errors_until_withdrawn: Absent[int] = None


class DrainRecord(Record):
    """How long the release's old slot drained and how many requests it finished."""

    seconds: float
    complete: bool
    finished: int
    timeout: float
    started_at: float
    ended_at: float
    handed_over: int = 0  # connections held past the timeout, ended one by one


class SideSeries(Record):
    """What one release (or Traefik itself, side `other`) answered in each bucket of a
    switch's graph: requests, errors (anything but 2xx, as the report counts them) and the
    nearest-rank p50 and p95 of their durations (None in a bucket without a request)."""

    requests: tuple[int, ...]
    errors: tuple[int, ...]
    p50_ms: tuple[float | None, ...]
    p95_ms: tuple[float | None, ...]


class SwitchSeries(Record):
    """The requests around a switch bucket by bucket, by the release that answered them,
    made from the same lines as the report: bucket i covers `start + i * step` to the next,
    and the buckets from `switch_at` (the report's start) on sum to the report's requests
    and errors. At most `pipeline.series.switch.MAX_BUCKETS` buckets: a longer window has
    wider ones."""

    start: float
    step: float
    switch_at: float
    until: float  # the report's end: the last bucket ends there, often before a full step
    sides: dict[str, SideSeries]

    def seconds(self, index: int) -> float:
        """How long bucket `index` covers: `step`, but the last one up to `until`."""
        return max(min(self.step, self.until - self.at(index)), 1e-3)

    def at(self, index: int) -> float:
        return self.start + index * self.step

    def totals(self, since: float) -> Counts:
        """The requests and errors of the buckets from `since` on, every side's."""
        first = max(0, round((since - self.start) / self.step))
        return Counts(
            requests=sum(sum(side.requests[first:]) for side in self.sides.values()),
            errors=sum(sum(side.errors[first:]) for side in self.sides.values()),
        )


class TrafficRecord(Record):
    """The requests around a release's switch (`window_seconds`, `requests`, `errors` and as
    many seconds `before`, bucket by bucket in `series`), its canary's figures and its
    drain's. A canary withdrawn before any switch records only `canary` and `series`."""

    window_seconds: Absent[float] = None
    requests: Absent[int] = None
    errors: Absent[int] = None
    before: Absent[Counts] = None
    canary: Absent[CanaryRecord] = None
    drain: Absent[DrainRecord] = None
    series: Absent[SwitchSeries] = None

    @property
    def switched(self) -> bool:
        """Whether the record has the switch's figures."""
        return self.requests is not None


class KeptRecord(Record):
    """A replaced release kept for skew protection (`pipeline.skew`): until when (seconds
    since the epoch) requests that name it are still sent to it, and the web containers kept
    running for them."""

    until: float
    web: tuple[Entry, ...]

    @property
    def slot(self) -> Slot:
        return Slot(tuple(entry.instance() for entry in self.web))
