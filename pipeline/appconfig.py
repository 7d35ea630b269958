"""`temps.toml`: the app's own deploy settings, validated with the exact key that is wrong."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.errors import InvalidInput

STRATEGIES = ("blue-green", "recreate")


@dataclass(frozen=True)
class HealthCheck:
    path: str = "/"
    interval: float = 1.0
    # After a failing probe the next ones come this often (HAProxy's "fastinter"): a broken
    # release is told apart from a blip in a fraction of `interval`, not in several of them.
    recheck_interval: float = 0.25
    timeout: float = 2.0
    healthy_threshold: int = 3
    unhealthy_threshold: int = 3
    grace_period: float = 0.0
    deadline: float = 60.0

    def pause_after(self, failing: bool) -> float:
        """Seconds until the next probe: sooner while a run of failures is being confirmed."""
        return min(self.interval, self.recheck_interval) if failing else self.interval


@dataclass(frozen=True)
class DeploySettings:
    strategy: str = "blue-green"
    drain_timeout: float = 30.0
    stop_timeout: float = 10.0
    keep_releases: int = 5
    release_command: str = ""
    release_timeout: float = 600.0
    bake: float = 30.0


@dataclass(frozen=True)
class Resources:
    memory_mb: int = 1024  # 0: no limit
    cpus: float = 1.0  # 0: no limit
    pids: int = 4096


@dataclass(frozen=True)
class AppConfig:
    port: int = 8000
    healthcheck: HealthCheck = field(default_factory=HealthCheck)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    resources: Resources = field(default_factory=Resources)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppConfig:
        return parse_config(data)


_T = TypeVar("_T", HealthCheck, DeploySettings, Resources)

# (minimum, maximum) for every number; a bound of None means open.
_RANGES: dict[str, tuple[float, float | None]] = {
    "port": (1, 65535),
    "healthcheck.interval": (0.01, 600),
    "healthcheck.recheck_interval": (0.01, 600),
    "healthcheck.timeout": (0.01, 600),
    "healthcheck.healthy_threshold": (1, 100),
    "healthcheck.unhealthy_threshold": (1, 100),
    "healthcheck.grace_period": (0, 3600),
    "healthcheck.deadline": (0.1, 3600),
    "deploy.drain_timeout": (0, 3600),
    "deploy.stop_timeout": (0, 3600),
    "deploy.keep_releases": (1, 1000),
    "deploy.release_timeout": (1, 86400),
    "deploy.bake": (0, 86400),
    "resources.memory_mb": (0, 1024 * 1024),
    "resources.cpus": (0, 1024),
    "resources.pids": (16, 1_000_000),
}


def text(value: str, what: str) -> str:
    """A string that can be stored and sent on: valid UTF-8 (no lone surrogates), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid text") from exc
    if "\x00" in value:
        raise InvalidInput(f"{what} holds a NUL character")
    return value


def load_toml(text: str, overrides: dict[str, Any] | None = None) -> AppConfig:
    """temps.toml, with the settings the API overrides laid over it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"temps.toml: {exc}") from exc
    return parse_config(merge(data, overrides or {}))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_config(data: dict[str, Any]) -> AppConfig:
    port = _value(data, "port", AppConfig.port, int)
    health = _section(data, "healthcheck", HealthCheck)
    deploy = _section(data, "deploy", DeploySettings)
    resources = _section(data, "resources", Resources)
    _unknown(data, {"port", "healthcheck", "deploy", "resources"}, "")
    if not health.path.startswith("/"):
        raise InvalidInput("temps.toml: healthcheck.path must start with '/'")
    if health.timeout > health.deadline:
        raise InvalidInput("temps.toml: healthcheck.timeout must not exceed healthcheck.deadline")
    if deploy.strategy not in STRATEGIES:
        raise InvalidInput(
            f"temps.toml: deploy.strategy must be one of {', '.join(STRATEGIES)}, "
            f"got {deploy.strategy!r}"
        )
    return AppConfig(port=port, healthcheck=health, deploy=deploy, resources=resources)


def _section(data: dict[str, Any], name: str, kind: type[_T]) -> _T:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise InvalidInput(f"temps.toml: [{name}] must be a table")
    defaults = kind()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        default = getattr(defaults, f.name)
        values[f.name] = _value(raw, f.name, default, type(default), prefix=f"{name}.")
    _unknown(raw, set(values), f"{name}.")
    return kind(**values)


def _value(data: dict[str, Any], key: str, default: Any, kind: type, prefix: str = "") -> Any:
    name = prefix + key
    if key not in data:
        return default
    value: Any = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"temps.toml: {name} must be a finite number, got {value!r}")
    if isinstance(value, str):
        value = text(value, f"temps.toml: {name}")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(f"temps.toml: {name} must be {_type_name(kind)}, got {value!r}")
    bounds = _RANGES.get(name)
    if bounds is not None and isinstance(value, int | float):
        low, high = bounds
        if value < low or (high is not None and value > high):
            raise InvalidInput(
                f"temps.toml: {name} must be between {low:g} and {high:g}, got {value!r}"
            )
    return value


def _unknown(data: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise InvalidInput(f"temps.toml: unknown key {prefix}{key}")


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
