"""`temps.toml`: the app's own deploy settings, validated with the exact key that is wrong.

pydantic: types, ranges and unknown keys are declared on the fields and checked by one
validator; this module only words its errors the way temps has always worded them.

The settings are pydantic dataclasses (frozen, unknown keys forbidden), so to the rest of the
code they stay plain dataclasses: `dataclasses.asdict`, `fields` and class defaults work.
Their values are strict (`pipeline/app/values.py`); `[swarm]` is declared beside the Swarm
backend (`pipeline/backends/swarm.py`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import math
import tomllib
from collections.abc import Mapping
from typing import Annotated

import annotated_types
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic import dataclasses as pydantic_dataclasses
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from pipeline.app.values import TABLE, Int, Number, Text, well_formed
from pipeline.backends.swarm import CONSTRAINT_FORM, SwarmSettings
from pipeline.cron import schedule
from pipeline.deploy.strategies import Strategy
from pipeline.errors import InvalidInput

# A process type's name, as in a Procfile: what names its containers too.
PROCESS_NAME = r"^[a-z][a-z0-9_-]{0,30}$"
# The pydantic error type of the rules beyond a field's type and range, which are reported
# only once every value has its type and range.
_RULE = "rule"


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise PydanticCustomError(_RULE, "must start with '/'")
    return path


def _known_strategy(strategy: str) -> str:
    if strategy not in set(Strategy):
        choices = ", ".join(Strategy)
        raise PydanticCustomError(_RULE, f"must be one of {choices}, got {strategy!r}")
    return strategy


# `[preview] ttl`: a whole number of seconds, minutes, hours or days.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ON_MAX = ("refuse", "evict")


def _duration(text: str) -> str:
    if len(text) < 2 or not text[:-1].isdigit() or text[-1] not in _DURATION_UNITS:
        raise PydanticCustomError(
            _RULE, f"must be a duration such as 90s, 30m, 12h or 3d, got {text!r}"
        )
    if int(text[:-1]) < 1:
        raise PydanticCustomError(_RULE, f"must be at least 1 second, got {text!r}")
    return text


def _seconds(value: object) -> object:
    """A duration given as text ("90s", "30m", "2h", "1d") becomes its number of seconds;
    a number is already one."""
    if isinstance(value, str):
        return float(int(_duration(value)[:-1]) * _DURATION_UNITS[value[-1]])
    return value


# A number of seconds, or a duration as text: `drain_timeout = "2h"` is 7200.
Seconds = Annotated[Number, BeforeValidator(_seconds)]


# The signals a leaving container may be sent as its handover begins ("": none).
HANDOVER_SIGNALS = ("", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2")


def _known_signal(name: str) -> str:
    if name not in HANDOVER_SIGNALS:
        choices = ", ".join(HANDOVER_SIGNALS[1:])
        raise PydanticCustomError(_RULE, f"must be one of {choices} (or empty), got {name!r}")
    return name


def _known_on_max(choice: str) -> str:
    if choice not in ON_MAX:
        raise PydanticCustomError(_RULE, f"must be one of refuse, evict, got {choice!r}")
    return choice


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class HealthCheck:
    path: Annotated[Text, AfterValidator(_absolute)] = "/"
    interval: Annotated[Number, Field(ge=0.01, le=600)] = 1.0
    # Through the gate, and after a failing probe, the next ones come this often (HAProxy's
    # "fastinter", for a server in transition): a new release passes its three probes in half
    # a second, and a broken one is told apart from a blip in a fraction of `interval`.
    recheck_interval: Annotated[Number, Field(ge=0.01, le=600)] = 0.25
    timeout: Annotated[Number, Field(ge=0.01, le=600)] = 2.0
    healthy_threshold: Annotated[Int, Field(ge=1, le=100)] = 3
    unhealthy_threshold: Annotated[Int, Field(ge=1, le=100)] = 3
    grace_period: Annotated[Number, Field(ge=0, le=3600)] = 0.0
    deadline: Annotated[Number, Field(ge=0.1, le=3600)] = 60.0

    @model_validator(mode="after")
    def _timeout_within_deadline(self) -> HealthCheck:
        if self.timeout > self.deadline:
            raise PydanticCustomError(
                _RULE, "healthcheck.timeout must not exceed healthcheck.deadline"
            )
        return self

    def pause_after(self, transitional: bool) -> float:
        """Seconds until the next probe: sooner while the release is in transition (going
        up through the gate, or a run of failures being confirmed), as HAProxy's fastinter."""
        return min(self.interval, self.recheck_interval) if transitional else self.interval


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class DeploySettings:
    strategy: Annotated[Text, AfterValidator(_known_strategy)] = Strategy.BLUE_GREEN.value
    # A leaving slot keeps its connections this long (WebSockets, event streams: up to a
    # day), then hands them over to the live release over `handover_window`, oldest first.
    drain_timeout: Annotated[Seconds, Field(ge=0, le=86400)] = 30.0
    handover_window: Annotated[Seconds, Field(ge=0, le=3600)] = 10.0
    # Sent to the leaving containers as the handover begins (none by default: most apps
    # exit on SIGTERM, every connection at once); `TEMPS_HANDOVER_SECONDS` holds the window.
    handover_signal: Annotated[Text, AfterValidator(_known_signal)] = ""
    stop_timeout: Annotated[Number, Field(ge=0, le=3600)] = 10.0
    keep_releases: Annotated[Int, Field(ge=1, le=1000)] = 5
    release_command: Text = ""
    release_timeout: Annotated[Number, Field(ge=1, le=86400)] = 600.0
    bake: Annotated[Number, Field(ge=0, le=86400)] = 30.0
    # Old workers keep running until the new ones have started; false stops them first, for
    # workers that must never run twice (a singleton scheduler, a queue without locking).
    worker_overlap: Annotated[bool, Strict()] = True


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class SkewSettings:
    """`[skew]`: the release a live one replaces stays reachable by its id for `keep`
    seconds (0: off), so that a page loaded from it finds its own assets and API
    (`pipeline.skew`)."""

    keep: Annotated[Seconds, Field(ge=0, le=7 * 86400)] = 0.0
    replicas: Annotated[Int, Field(ge=1, le=20)] = 1  # web containers of it kept running
    # Its release header middleware also sets `temps_release=vN`: off by default, since
    # Traefik's header replaces a `Set-Cookie` of the app's own (README).
    cookie: Annotated[bool, Strict()] = False


MemoryMb = Annotated[Int, Field(ge=0, le=1024 * 1024)]  # 0: no limit
Cpus = Annotated[Number, Field(ge=0, le=1024)]  # 0: no limit
Pids = Annotated[Int, Field(ge=16, le=1_000_000)]
ProcessName = Annotated[Text, Field(pattern=PROCESS_NAME)]


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class ProcessResources:
    """`[resources.<process>]`: what differs for one process type; the rest is `[resources]`."""

    memory_mb: MemoryMb | None = None
    cpus: Cpus | None = None
    pids: Pids | None = None


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class Resources:
    memory_mb: MemoryMb = 1024
    cpus: Cpus = 1.0
    pids: Pids = 4096
    # `[resources.worker]` tables, gathered here by `_gather_processes`.
    processes: dict[ProcessName, ProcessResources] = dataclasses.field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_processes(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        tables = {k: v for k, v in data.items() if isinstance(v, dict) and k != "processes"}
        if not tables:
            return data
        rest = {k: v for k, v in data.items() if k not in tables}
        return {**rest, "processes": {**rest.get("processes", {}), **tables}}

    def of(self, process: str) -> Resources:
        """The limits of one process type's containers."""
        own = self.processes.get(process)
        if own is None:
            return self
        return Resources(
            memory_mb=self.memory_mb if own.memory_mb is None else own.memory_mb,
            cpus=self.cpus if own.cpus is None else own.cpus,
            pids=self.pids if own.pids is None else own.pids,
        )


def _rising_percents(steps: list[int]) -> list[int]:
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise PydanticCustomError(_RULE, "must rise from one step to the next")
    return steps


Percent = Annotated[Int, Field(ge=1, le=100)]


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class CanarySettings:
    """`strategy = "canary"`: a share of the requests goes to the new release, which is
    judged by what it served against the live release over the same window."""

    weight: Annotated[Int, Field(ge=1, le=99)] = 10  # percent of requests, the first step
    # Percents one after the other (e.g. [10, 50]); empty: [weight]. 100 is the promotion.
    steps: Annotated[list[Percent], Field(max_length=10), AfterValidator(_rising_percents)] = (
        dataclasses.field(default_factory=list)
    )
    duration: Annotated[Number, Field(ge=1, le=86400)] = 60.0  # seconds a step lasts at most
    min_requests: Annotated[Int, Field(ge=1, le=10_000_000)] = 100  # ...or until this many
    max_error_rate: Annotated[Number, Field(ge=0, le=1)] = 0.02
    max_error_rate_increase: Annotated[Number, Field(ge=0, le=1)] = 0.01
    max_p95_ratio: Annotated[Number, Field(ge=1, le=1000)] = 2.0

    @property
    def percents(self) -> list[int]:
        """The weights the canary goes through before the promotion."""
        return [step for step in (self.steps or [self.weight]) if step < 100]


# An image reference as a FROM line takes it: [registry/]name[:tag][@digest].
IMAGE_REFERENCE = r"^([a-z0-9][a-z0-9._:/@-]{0,254})?$"
IMAGE_FORM = "an image reference such as python:3.12-slim or registry.example.com/python:3.12"
ImageReference = Annotated[Text, Field(pattern=IMAGE_REFERENCE)]


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class BuildSettings:
    """`[build]`: the base images of the Dockerfile temps makes for a repository without one
    (pipeline/builders); empty: the daemon's --base-images, then temps' defaults."""

    image: ImageReference = ""  # the stack's image: the build stage, and the final one but Go's
    runtime_image: ImageReference = ""  # the final stage's image


def _readable_schedule(text: str, zone: str, schedule_at: str, zone_at: str) -> None:
    """A cron schedule and its time zone as `pipeline.cron` reads them; each refusal names
    where it was written."""
    try:
        schedule.check(text)
    except schedule.BadSchedule as exc:
        raise PydanticCustomError(_RULE, f"{schedule_at}: {exc}") from None
    try:
        schedule.zone(zone)
    except schedule.BadSchedule as exc:
        raise PydanticCustomError(_RULE, f"{zone_at}: {exc}") from None


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class BackupSettings:
    """`[backup]`: what `temps backup create` runs before it reads the app's volumes
    (pipeline/backups): a dump of a database into a volume, the backup's consistency point."""

    command: Annotated[Text, Field(max_length=4096)] = ""  # `sh -c`, in a one-off container
    timeout: Annotated[Number, Field(gt=0, le=86400)] = 600.0  # seconds it may take
    # When the daemon makes one by itself (`pipeline.cron`, as the job `backup`): a cron
    # schedule in `timezone`; empty: only when asked.
    schedule: Text = ""
    timezone: Text = "UTC"

    @model_validator(mode="after")
    def _readable(self) -> BackupSettings:
        if self.schedule:
            _readable_schedule(self.schedule, self.timezone, "backup.schedule", "backup.timezone")
        return self


Pattern = Annotated[Text, Field(min_length=1, max_length=255)]
# An environment variable's name, as `temps config set` takes it.
ENV_FORM = "a variable name is letters, digits and '_' (at most 128, not a digit first)"
EnvName = Annotated[Text, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class PreviewSettings:
    """`[preview]`: pushed branches other than main deploy as previews of the app, read from
    main's `temps.toml` (`pipeline.previews`)."""

    enabled: Annotated[bool, Strict()] = False
    # Glob patterns (`fnmatch`, `*` crosses '/') a branch must match; empty: every branch.
    branches: Annotated[list[Pattern], Field(max_length=100)] = dataclasses.field(
        default_factory=list
    )
    # A preview with no release for this long is destroyed (`pipeline.previews.expiry`);
    # none: kept until its branch is deleted.
    ttl: Annotated[Text, AfterValidator(_duration)] | None = None
    # Previews of the app at most; a push that would make one more is refused, or, with
    # `on_max = "evict"`, first destroys the preview idle longest.
    max: Annotated[Int, Field(ge=1, le=1000)] = 10
    on_max: Annotated[Text, AfterValidator(_known_on_max)] = "refuse"
    # GitHub pull_request and GitLab merge request webhooks make previews too (`pr-42--app`);
    # one from a fork only with `forks`, and never with a secret of the app's.
    pull_requests: Annotated[bool, Strict()] = True
    forks: Annotated[bool, Strict()] = False
    # The preview's environment, copied when it is made: the app's variables whose names
    # match `inherit`, but no secret (`temps config set --secret`, or a secret-looking name)
    # unless named in `secrets`; then `env` over them.
    inherit: Annotated[list[Pattern], Field(max_length=100)] = dataclasses.field(
        default_factory=lambda: ["*"]
    )
    secrets: Annotated[list[EnvName], Field(max_length=100)] = dataclasses.field(
        default_factory=list
    )
    env: Annotated[dict[EnvName, Text], Field(max_length=200)] = dataclasses.field(
        default_factory=dict
    )
    # Run once in a one-off container of the preview's first release, before its release
    # command: a database of its own (a fresh schema, a seeded copy).
    setup: Text = ""
    setup_timeout: Annotated[Number, Field(ge=1, le=86400)] = 600.0
    # Containers per process type; web 1 and no other process unless named here.
    formation: dict[ProcessName, Annotated[Int, Field(ge=0, le=100)]] = dataclasses.field(
        default_factory=dict
    )
    # Limits of the preview's containers instead of those of its commit's `[resources]`.
    resources: Resources | None = None
    # Whether the preview mounts the app's named volumes (its data!): not unless asked.
    volumes: Annotated[bool, Strict()] = False

    @property
    def ttl_seconds(self) -> float | None:
        if self.ttl is None:
            return None
        return float(int(self.ttl[:-1]) * _DURATION_UNITS[self.ttl[-1]])

    def covers(self, branch: str) -> bool:
        """Whether a push of `branch` (its name, `feature-x`) makes or updates a preview."""
        if not self.enabled:
            return False
        return not self.branches or any(fnmatch.fnmatchcase(branch, p) for p in self.branches)


OVERLAP = ("skip", "allow")


def _known_overlap(choice: str) -> str:
    if choice not in OVERLAP:
        raise PydanticCustomError(_RULE, f"must be one of skip, allow, got {choice!r}")
    return choice


# The job a `[backup] schedule` runs as, beside the app's own `[[cron]]` entries.
BACKUP_JOB = "backup"


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class CronEntry:
    """`[[cron]]`: a command run on a schedule in a one-off container of the release live
    when it is due (`pipeline.cron`)."""

    name: ProcessName
    schedule: Text
    command: Annotated[Text, Field(min_length=1)]
    timezone: Text = "UTC"  # an IANA name: the schedule's hours and days are its
    timeout: Annotated[Number, Field(ge=1, le=86400)] = 3600.0  # then killed: timed_out
    # A due time while the entry's previous run still runs: "skip" records it skipped,
    # "allow" runs it beside.
    overlap: Annotated[Text, AfterValidator(_known_overlap)] = "skip"
    # A daemon that was down at the entry's last scheduled time runs it once at its start.
    catch_up: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _readable(self) -> CronEntry:
        entry = f"entry {self.name!r}"
        _readable_schedule(self.schedule, self.timezone, f"schedule: {entry}", f"timezone: {entry}")
        return self


def _distinct_names(entries: list[CronEntry]) -> list[CronEntry]:
    names = [entry.name for entry in entries]
    if BACKUP_JOB in names:
        raise PydanticCustomError(
            _RULE, f"cron: {BACKUP_JOB!r} is temps' own job: schedule backups in [backup]"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PydanticCustomError(_RULE, f"cron: more than one entry is named {twice[0]!r}")
    return entries


@pydantic_dataclasses.dataclass(frozen=True, config=TABLE)
class AppConfig:
    port: Annotated[Int, Field(ge=1, le=65535)] = 8000
    healthcheck: HealthCheck = dataclasses.field(default_factory=HealthCheck)
    deploy: DeploySettings = dataclasses.field(default_factory=DeploySettings)
    skew: SkewSettings = dataclasses.field(default_factory=SkewSettings)
    resources: Resources = dataclasses.field(default_factory=Resources)
    canary: CanarySettings = dataclasses.field(default_factory=CanarySettings)
    swarm: SwarmSettings = dataclasses.field(default_factory=SwarmSettings)
    build: BuildSettings = dataclasses.field(default_factory=BuildSettings)
    preview: PreviewSettings = dataclasses.field(default_factory=PreviewSettings)
    backup: BackupSettings = dataclasses.field(default_factory=BackupSettings)
    # Process type -> command, from the Procfile (or a `[processes]` table); empty: the
    # image's own command is the one web process.
    processes: dict[ProcessName, Text] = dataclasses.field(default_factory=dict)
    # `[[cron]]` entries, each with its own name.
    cron: Annotated[list[CronEntry], Field(max_length=100), AfterValidator(_distinct_names)] = (
        dataclasses.field(default_factory=list)
    )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AppConfig:
        return parse_config(data)


_SECTIONS = {
    "healthcheck": HealthCheck,
    "deploy": DeploySettings,
    "skew": SkewSettings,
    "resources": Resources,
    "canary": CanarySettings,
    "swarm": SwarmSettings,
    "build": BuildSettings,
    "preview": PreviewSettings,
    "backup": BackupSettings,
}
_ADAPTER = TypeAdapter(AppConfig)


def _fields_of(kind: type, prefix: str = "") -> dict[str, FieldInfo]:
    assert pydantic_dataclasses.is_pydantic_dataclass(kind)
    return {prefix + name: info for name, info in kind.__pydantic_fields__.items()}


# Every setting by its dotted name ("port", "deploy.bake"), as its field declares it.
_FIELDS = {"port": _fields_of(AppConfig)["port"]} | {
    name: info
    for section, kind in _SECTIONS.items()
    for name, info in _fields_of(kind, f"{section}.").items()
}


def _bounds(info: FieldInfo) -> tuple[float, float | None] | None:
    low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), None)
    if not isinstance(low, int | float):
        return None
    return low, high if isinstance(high, int | float) else None


# `[[cron]]` keys by their name in any entry ("cron.timeout").
_FIELDS |= _fields_of(CronEntry, "cron.")
# (minimum, maximum) for every number; a bound of None means open.
_RANGES: dict[str, tuple[float, float | None]] = {
    name: bounds for name, info in _FIELDS.items() if (bounds := _bounds(info)) is not None
}
# What a value must look like, by setting, where its pattern refuses it.
_FORMS = {
    "swarm.constraints": CONSTRAINT_FORM,
    "build.image": IMAGE_FORM,
    "build.runtime_image": IMAGE_FORM,
    "preview.env": ENV_FORM,
    "preview.secrets": ENV_FORM,
    "cron.name": (
        "a job's name is lowercase letters, digits, '-' and '_' (at most 31, a letter first)"
    ),
}
_TYPE_NAMES = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
}
_NOT_A_TABLE = {"dataclass_type", "dataclass_exact_type", "dict_type"}
_UNKNOWN = {"unexpected_keyword_argument", "extra_forbidden", "invalid_key"}


def _problem(exc: ValidationError) -> str:
    """The first thing wrong, in the words temps uses: rules only once every value is sound."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] != _RULE), errors[0])
    return f"temps.toml: {_worded(first)}"


def _worded(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    if loc[:1] == ["cron"] and len(loc) > 1 and loc[1].isdigit():
        return _cron_worded(error, loc)
    if loc[:2] == ["resources", "processes"] and len(loc) > 2:
        loc = ["resources", *loc[2:]]  # as written: [resources.worker]
    name = ".".join(loc)
    kind, value = error["type"], error["input"]
    if len(loc) == 3 and loc[2].isdigit():  # an item of a list: canary.steps[0]
        name = f"{loc[0]}.{loc[1]}[{loc[2]}]"
        if kind in ("greater_than_equal", "less_than_equal"):
            return f"{name} must be between 1 and 100, got {value!r}"
        if kind in ("too_short", "too_long"):
            return f"{name} must be 1 to 255 characters, got {value!r}"
    if kind == "string_pattern_mismatch" and ".".join(loc[:2]) in _FORMS:
        return f"{name}: {_FORMS['.'.join(loc[:2])]}; got {value!r}"
    if kind == "string_pattern_mismatch":
        return (
            f"{name}: a process type is lowercase letters, digits, '-' and '_' (at most 31, "
            f"a letter first), got {value!r}"
        )
    if loc[:2] == ["preview", "formation"] and kind in ("greater_than_equal", "less_than_equal"):
        return f"{name} must be between 0 and 100 containers, got {value!r}"
    if loc[:2] == ["preview", "resources"] and len(loc) == 3:
        setting = f"resources.{loc[2]}"  # [preview.resources] is a [resources]
        if setting in _RANGES and kind in ("greater_than_equal", "less_than_equal"):
            low, high = _RANGES[setting]
            return f"{name} must be between {low:g} and {high:g}, got {value!r}"
    if loc[:1] == ["resources"] and len(loc) == 3:
        setting = f"resources.{loc[2]}"  # its bounds are those of [resources]
        if setting in _RANGES and kind in ("greater_than_equal", "less_than_equal"):
            low, high = _RANGES[setting]
            return f"{name} must be between {low:g} and {high:g}, got {value!r}"
    if kind in _UNKNOWN:
        return f"unknown key {name}"
    if kind in _NOT_A_TABLE:
        return f"[{name}] must be a table"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if kind in _TYPE_NAMES:
        return f"{name} must be {_TYPE_NAMES[kind]}, got {value!r}"
    if name in _RANGES and kind in ("greater_than_equal", "less_than_equal"):
        low, high = _RANGES[name]
        if _FIELDS[name].annotation is float and not isinstance(value, str):
            value = float(value)  # a duration as text is quoted as it was written
        return f"{name} must be between {low:g} and {high:g}, got {value!r}"
    if name in _FIELDS:
        return f"{name} {error['msg']}"
    return error["msg"]  # a rule across a section's fields, which names them itself


def _cron_worded(error: ErrorDetails, loc: list[str]) -> str:
    """An entry's error, named by its place: `cron[0].schedule`."""
    entry = f"cron[{loc[1]}]"
    kind, value = error["type"], error["input"]
    if len(loc) == 2:
        if kind == _RULE:  # "schedule: entry 'x': ..." from CronEntry._readable
            return f"{entry}.{error['msg']}"
        if kind == "missing_argument":
            return f"{entry} {error['msg'].lower()}"
        if kind in _NOT_A_TABLE:
            return f"{entry} must be a table ([[cron]])"
        return f"{entry}: {error['msg']}"
    name, setting = f"{entry}.{loc[2]}", f"cron.{loc[2]}"
    if kind in ("missing", "missing_argument"):
        return f"{entry}.{loc[2]} is required"
    if kind in _UNKNOWN:
        return f"unknown key {name}"
    if kind == "string_pattern_mismatch" and setting in _FORMS:
        return f"{name}: {_FORMS[setting]}; got {value!r}"
    if kind in _TYPE_NAMES:
        return f"{name} must be {_TYPE_NAMES[kind]}, got {value!r}"
    if setting in _RANGES and kind in ("greater_than_equal", "less_than_equal"):
        low, high = _RANGES[setting]
        return f"{name} must be between {low:g} and {high:g}, got {value!r}"
    if kind == "too_short":
        return f"{name} must not be empty"
    return f"{name} {error['msg']}"


def text(value: str, what: str) -> str:
    """A string that can be stored and sent on: valid UTF-8 (no lone surrogates), no NUL."""
    try:
        return well_formed(value)
    except PydanticCustomError as exc:
        raise InvalidInput(f"{what} {exc.message()}") from None


def load_toml(text: str, overrides: Mapping[str, object] | None = None) -> AppConfig:
    """temps.toml, with the settings the API overrides laid over it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"temps.toml: {exc}") from exc
    return parse_config(merge(data, overrides or {}))


def merge(base: Mapping[str, object], overrides: Mapping[str, object]) -> dict[str, object]:
    merged = dict(base)
    for key, value in overrides.items():
        known = merged.get(key)
        if isinstance(value, dict) and isinstance(known, dict):
            merged[key] = merge(known, value)
        else:
            merged[key] = value
    return merged


def parse_config(data: Mapping[str, object]) -> AppConfig:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InvalidInput(_problem(exc)) from None
