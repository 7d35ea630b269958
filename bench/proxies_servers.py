"""The proxies bench/proxies.py sets beside temps' own Traefik, each in front of the same app
image on the home's bridge, each on free loopback ports with its files in a temporary
directory, each stopped (and its container removed) when its context ends:

- nginx: Debian's binary with a configuration written here, keep-alive to the upstream;
- Traefik's Docker provider, set up the way Coolify ships it, reading labels on a container of
  its own (the app's image, on the home's bridge);
- a bare Traefik: the file provider, one router per entrypoint, one server, nothing else;
- copies of temps' own Traefik (its static and dynamic files, ports moved), each without one
  of the things a bare Traefik has not, to weigh each one.

Each runs in a session of its own, as temps' Traefik does (the daemon starts it so that it
outlives the daemon): with the kernel's autogroups on, a session is a scheduling group, and
a proxy sharing the bench's group with `hey` was served differently from temps' Traefik on a
loaded machine. Every HTTPS entrypoint serves the certificate it is given, the same for all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import REPO_ROOT
from peers_diy import stop_process

from tests.support.dockercli import docker, remove_containers_labelled
from tests.support.ports import free_port

TRAEFIK = REPO_ROOT / ".venv" / "bin" / "traefik"
READY_SECONDS = 30.0
# Every container this bench starts carries this label with its pid, and nothing else does.
LABEL_KEY = "temps-proxies"

# What temps' Traefik has that a bare one has not (pipeline/traefik/config.py, documents.py).
ACCESS_LOG = "access_log"  # JSON lines, one write per request
# Traefik's Prometheus metrics, with a label set per service: off unless temps runs with
# --traefik-metrics, so the copies have them only when temps' own Traefik has.
METRICS = "metrics"
MIDDLEWARES = "middlewares"  # the release header and the retry, on the app's routers
TRANSPORT = "transport"  # idle backend connections closed after 1 s, a 2 s dial timeout
LOG_FIELDS = "log_fields"  # the access log's fields held to those temps reads (else all)
LOG_BUFFER = "log_buffer"  # lines handed to one writer (else each request writes its own)
EXTRAS = (ACCESS_LOG, METRICS, MIDDLEWARES, TRANSPORT, LOG_FIELDS, LOG_BUFFER)


@dataclass(frozen=True)
class Certificate:
    chain: Path  # PEM, the leaf first
    key: Path


@dataclass(frozen=True)
class Served:
    """Where a proxy serves the app's host, and the process whose CPU time it spends (with
    its children: nginx's workers)."""

    http: str  # base URLs on 127.0.0.1
    https: str
    pid: int | None = None


def family(pid: int) -> dict[int, list[str]]:
    """A process and its live descendants: each one's /proc stat fields after its name."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                # The fields after the command name, which may hold spaces and parentheses.
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    ours, grew = {pid}, True
    while grew:
        found = {child for child, fields in stats.items() if int(fields[1]) in ours}
        grew = not found <= ours
        ours |= found
    return {member: stats[member] for member in ours if member in stats}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its live descendants, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[11]) + int(fields[12]) for fields in family(pid).values()) / ticks


def go_collector(pid: int) -> dict[str, str]:
    """The Go garbage collector settings (GOGC, GOMEMLIMIT) a running process was given."""
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = dict(pair.decode(errors="replace").partition("=")[::2] for pair in pairs if pair)
    return {name: found[name] for name in ("GOGC", "GOMEMLIMIT") if name in found}


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its live descendants, in MiB."""
    pages = sum(int(fields[21]) for fields in family(pid).values())
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def wait_serving(url: str, host: str, seconds: float = READY_SECONDS) -> None:
    """Until GET `url` with `host` (as Host, and as SNI over HTTPS) answers 200."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    # Whether it serves, not whose certificate: the certificate is the one given to it.
    with httpx.Client(verify=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                answer = client.get(url, headers={"Host": host}, extensions={"sni_hostname": host})
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
    raise RuntimeError(f"{url} ({host}) did not answer 200 within {seconds:g} s: {last}")


@contextlib.contextmanager
def running(
    command: list[str], log: Path, stop_signal: int, environment: dict[str, str] | None = None
) -> Iterator[int]:
    """`command` in a session of its own (see the top), with `environment` added to this
    process's; yields its pid."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(environment or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield process.pid
    finally:
        stop_process(process, stop_signal)


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=f"temps-proxies-{name}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- nginx -------------------------------------------------------------------------------------

# keepalive_requests raised on both sides so that neither end closes a busy connection
# after 1,000 requests (nginx's default); Traefik has no such limit.
NGINX_CONF = """worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream app {{
        server {upstream};
        keepalive 64;
        keepalive_requests 100000;
    }}
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(binary: str, upstream: str, host: str, certificate: Certificate) -> Iterator[Served]:
    """nginx proxying to `upstream` (address:port) over HTTP/1.1 with idle connections kept."""
    with workdir("nginx") as root:
        http, https = free_port(), free_port()
        conf = root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                root=root,
                upstream=upstream,
                http=http,
                https=https,
                chain=certificate.chain,
                key=certificate.key,
            )
        )
        command = [binary, "-c", str(conf), "-e", str(root / "error.log"), "-g", "daemon off;"]
        with running(command, root / "nginx.out", signal.SIGQUIT) as pid:
            served = Served(f"http://127.0.0.1:{http}/", f"https://127.0.0.1:{https}/", pid)
            wait_serving(served.http, host)
            yield served


# --- Traefik: bare, and copies of temps' own --------------------------------------------------


def bare_config(
    http: int, https: int, root: Path, upstream: str, host: str, certificate: Certificate
) -> tuple[dict[str, object], dict[str, object]]:
    """Static and dynamic configuration of a Traefik with nothing but the route."""
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{http}"},
            "websecure": {"address": f"127.0.0.1:{https}"},
        },
        "providers": {"file": {"filename": str(root / "dynamic.yml")}},
        "log": {"level": "ERROR", "filePath": str(root / "traefik.log")},
    }
    rule = f"Host(`{host}`)"
    dynamic = {
        "http": {
            "routers": {
                "app": {"rule": rule, "entryPoints": ["web"], "service": "app"},
                "app-tls": {
                    "rule": rule,
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {},
                },
            },
            "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://{upstream}"}]}}},
        },
        "tls": {
            "certificates": [{"certFile": str(certificate.chain), "keyFile": str(certificate.key)}]
        },
    }
    return static, dynamic


@contextlib.contextmanager
def traefik(
    static: dict[str, object], root: Path, host: str, environment: dict[str, str] | None = None
) -> Iterator[Served]:
    """Traefik started on `static` (written to `root`) with `environment` added, once it
    serves `host` on both entrypoints, which are named web and websecure."""
    points: Any = static["entryPoints"]
    http, https = (points[name]["address"] for name in ("web", "websecure"))
    path = root / "traefik.yml"
    path.write_text(json.dumps(static, indent=2))
    command = [str(TRAEFIK), f"--configFile={path}"]
    with running(command, root / "traefik.out", signal.SIGTERM, environment) as pid:
        served = Served(f"http://{http}/", f"https://{https}/", pid)
        wait_serving(served.http, host)
        wait_serving(served.https, host)
        yield served


@contextlib.contextmanager
def bare_traefik(
    upstream: str, host: str, certificate: Certificate, environment: dict[str, str] | None = None
) -> Iterator[Served]:
    """A Traefik of its own with the file provider routing `host` to `upstream`: no access
    log, no metrics, no middleware, the default transport; `environment` added to its own."""
    with workdir("traefik-bare") as root:
        static, dynamic = bare_config(free_port(), free_port(), root, upstream, host, certificate)
        (root / "dynamic.yml").write_text(json.dumps(dynamic, indent=2))
        with traefik(static, root, host, environment) as served:
            yield served


def copied_static(home: Path, root: Path, without: frozenset[str]) -> dict[str, Any]:
    """temps' static configuration with its own files under `root`, on other ports."""
    static: dict[str, Any] = json.loads((home / "traefik" / "traefik.yml").read_text())
    for point in static["entryPoints"].values():
        point["address"] = f"127.0.0.1:{free_port()}"
    static["providers"]["file"]["directory"] = str(root / "dynamic")
    static["log"]["filePath"] = str(root / "traefik.log")
    static["accessLog"]["filePath"] = str(root / "access.log")
    for resolver in static.get("certificatesResolvers", {}).values():
        shutil.copyfile(home / "traefik" / "acme.json", root / "acme.json")
        (root / "acme.json").chmod(0o600)  # Traefik refuses a store others may read
        resolver["acme"]["storage"] = str(root / "acme.json")
    if ACCESS_LOG in without:
        del static["accessLog"]
    else:
        if LOG_FIELDS in without:
            static["accessLog"].pop("fields", None)
        if LOG_BUFFER in without:
            static["accessLog"].pop("bufferingSize", None)
    if METRICS in without:
        static.pop("metrics", None)
    if TRANSPORT in without:
        del static["serversTransport"]
    return static


@contextlib.contextmanager
def temps_copy(
    home: Path,
    app: str,
    host: str,
    without: frozenset[str],
    environment: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Another Traefik on a copy of the files temps wrote for its own (the certificate and
    its ACME store too), less the extras in `without`, with `environment` added to its own
    (GOGC for one)."""
    unknown = without - set(EXTRAS)
    if unknown:
        raise ValueError(f"unknown extras: {sorted(unknown)}")
    with workdir("traefik-copy") as root:
        static = copied_static(home, root, without)
        shutil.copytree(home / "traefik" / "dynamic", root / "dynamic")
        if MIDDLEWARES in without:
            routes = root / "dynamic" / "routes.yml"
            document = json.loads(routes.read_text())
            for router in document["http"]["routers"].values():
                if router["service"] == app:
                    router.pop("middlewares", None)
            routes.write_text(json.dumps(document, indent=2))
        with traefik(static, root, host, environment) as served:
            yield served


# --- Traefik's Docker provider, as Coolify ships it ---------------------------------------------


def coolify_command(http: int, https: int, dynamic: Path, log: Path) -> list[str]:
    """Coolify's default proxy command (bootstrap/helpers/proxy.php,
    generateDefaultProxyConfiguration, production: no access log, no metrics, log level left
    at ERROR), on loopback ports. Left out: the ACME resolver (the certificate comes from the
    file provider, as a certificate Coolify is given does). Added: no version check or usage
    report (nothing leaves the machine), and the constraint to this run's containers."""
    return [
        str(TRAEFIK),
        "--ping=true",
        "--ping.entrypoint=http",
        "--api.dashboard=true",
        "--api.insecure=false",
        f"--entrypoints.http.address=127.0.0.1:{http}",
        f"--entrypoints.https.address=127.0.0.1:{https}",
        "--entrypoints.http.http.encodequerysemicolons=true",
        "--entryPoints.http.http2.maxConcurrentStreams=250",
        "--entrypoints.https.http.encodequerysemicolons=true",
        "--entryPoints.https.http2.maxConcurrentStreams=250",
        "--entrypoints.https.http3",
        f"--providers.file.directory={dynamic}",
        "--providers.file.watch=true",
        "--providers.docker=true",
        "--providers.docker.exposedbydefault=false",
        f"--providers.docker.constraints=Label(`{LABEL_KEY}`, `{os.getpid()}`)",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
        f"--log.filePath={log}",
    ]


def coolify_labels(host: str, port: int) -> list[str]:
    """The labels Coolify puts on an application's container for an http:// and an https://
    domain, without the redirect (plain HTTP is measured too) and the resolver."""
    rule = f"Host(`{host}`) && PathPrefix(`/`)"
    labels = [
        "traefik.enable=true",
        "traefik.http.middlewares.gzip.compress=true",
    ]
    for router, entrypoint in (("http-0-app", "http"), ("https-0-app", "https")):
        labels += [
            f"traefik.http.routers.{router}.entryPoints={entrypoint}",
            f"traefik.http.routers.{router}.middlewares=gzip",
            f"traefik.http.routers.{router}.rule={rule}",
            f"traefik.http.routers.{router}.service={router}",
            f"traefik.http.services.{router}.loadbalancer.server.port={port}",
        ]
    labels.append("traefik.http.routers.https-0-app.tls=true")
    return labels


@contextlib.contextmanager
def labelled_container(image: str, network: str, labels: list[str], port: int) -> Iterator[str]:
    """The app's image run again on the home's bridge with `labels`; yields its address."""
    own = f"{LABEL_KEY}={os.getpid()}"
    args = ["run", "-d", "--init", "--network", network, "-e", f"PORT={port}", "--label", own]
    for label in labels:
        args += ["--label", label]
    try:
        container = docker(*args, image).strip()
        address = docker(
            "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
            container,
        ).strip()  # fmt: skip
        yield f"{address}:{port}"
    finally:
        remove_containers_labelled(own)


@contextlib.contextmanager
def docker_traefik(
    image: str, network: str, host: str, port: int, certificate: Certificate
) -> Iterator[tuple[Served, str]]:
    """Traefik's Docker provider routing `host` to a labelled container of `image`; yields
    where it serves, and the container's own address:port."""
    with workdir("traefik-docker") as root:
        http, https = free_port(), free_port(udp_too=True)  # HTTP/3 listens on UDP too
        dynamic = root / "dynamic"
        dynamic.mkdir()
        files = {"certFile": str(certificate.chain), "keyFile": str(certificate.key)}
        (dynamic / "certificates.yml").write_text(json.dumps({"tls": {"certificates": [files]}}))
        command = coolify_command(http, https, dynamic, root / "traefik.log")
        labels = coolify_labels(host, port)
        with (
            labelled_container(image, network, labels, port) as upstream,
            running(command, root / "traefik.out", signal.SIGTERM) as pid,
        ):
            served = Served(f"http://127.0.0.1:{http}/", f"https://127.0.0.1:{https}/", pid)
            wait_serving(served.http, host)
            wait_serving(served.https, host)
            yield served, upstream
