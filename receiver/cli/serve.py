"""`temps serve`: the daemon's flags, each also a `TEMPS_` variable, and its start."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TypeAlias

from pipeline.errors import InvalidInput
from pipeline.settings import ACME_CA_NAMES, Address, Settings


def env_or(name: str, default: str) -> str:
    return os.environ.get(f"TEMPS_{name}", default)


LIMIT_FLAGS = [
    ("--max-push-bytes", "MAX_PUSH_BYTES", 512 * 1024 * 1024, "largest git push body"),
    ("--max-object-bytes", "MAX_OBJECT_BYTES", 100 * 1024 * 1024, "largest file of a push"),
    ("--max-unpacked-bytes", "MAX_UNPACKED_BYTES", 1024**3, "what a push may unpack to"),
    ("--max-request-bytes", "MAX_REQUEST_BYTES", 1024 * 1024, "largest API request body"),
    ("--max-webhook-bytes", "MAX_WEBHOOK_BYTES", 5 * 1024 * 1024, "largest webhook payload"),
    ("--max-fetch-bytes", "MAX_FETCH_BYTES", 512 * 1024 * 1024, "most a webhook's fetch reads"),
    ("--fetch-timeout", "FETCH_TIMEOUT", 300, "seconds a webhook's fetch may take"),
    ("--build-timeout", "BUILD_TIMEOUT", 1800, "seconds a build may take"),
    ("--build-memory-mb", "BUILD_MEMORY_MB", 4096, "memory of a build step, 0: no limit"),
    ("--build-pids", "BUILD_PIDS", 4096, "processes of all builds together, 0: no limit"),
    ("--max-env-vars", "MAX_ENV_VARS", 200, "environment variables per app"),
    ("--max-log-lines", "MAX_LOG_LINES", 10_000, "log lines kept per release"),
    ("--max-log-bytes", "MAX_LOG_BYTES", 4 * 1024 * 1024, "log bytes kept per release"),
    ("--max-traefik-log-bytes", "MAX_TRAEFIK_LOG_BYTES", 100 * 1024 * 1024, "then rotated"),
    ("--max-daemon-log-bytes", "MAX_DAEMON_LOG_BYTES", 50 * 1024 * 1024, "--log-file rotates"),
    ("--keep-release-logs", "KEEP_RELEASE_LOGS", 100, "releases per app whose log is kept"),
    ("--auth-failures", "AUTH_FAILURES", 10, "failed logins per client address per minute"),
    ("--acme-retry-seconds", "ACME_RETRY_SECONDS", 3600, "then a refused host is ordered again"),
]
# Limit flags whose Settings field is named otherwise.
SETTING_OF_FLAG = {"auth_failures": "auth_failures_allowed"}

SERVE_FLAGS = [
    ("--home", "HOME", str(Path.home() / ".temps"), "state directory, default ~/.temps"),
    ("--listen", "LISTEN", "127.0.0.1:7000", "API and git address"),
    ("--http", "HTTP", "127.0.0.1:8080", "Traefik's web entrypoint"),
    ("--domain", "DOMAIN", "localhost", "apps are served at <app>.<domain>"),
    ("--traefik-api", "TRAEFIK_API", "127.0.0.1:7001", "Traefik's API, ping and metrics, loopback"),
    ("--https", "HTTPS", "", "Traefik's websecure entrypoint, e.g. 0.0.0.0:443; default: no HTTPS"),
    ("--acme-email", "ACME_EMAIL", "", "contact address given to the ACME CA"),
    (
        "--acme-ca",
        "ACME_CA",
        "letsencrypt",
        "ACME directory URL, or letsencrypt / letsencrypt-staging",
    ),
    ("--acme-cert-hours", "ACME_CERT_HOURS", "2160", "certificate lifetime the CA gives, hours"),
    (
        "--control-host",
        "CONTROL_HOST",
        "",
        "serve the API, git and dashboard at this host over HTTPS (needs --https)",
    ),
    (
        "--forwarded-allow-ips",
        "FORWARDED_ALLOW_IPS",
        "",
        "comma-separated proxy addresses whose X-Forwarded-For is believed; "
        "default none: the peer address is the client",
    ),
    ("--runtime", "RUNTIME", "engine", "engine: this Docker host; swarm: this Swarm manager"),
    ("--registry", "REGISTRY", "", "HOST:PORT every Swarm node pulls images from (swarm only)"),
    (
        "--log-file",
        "LOG_FILE",
        "",
        "write the daemon's log to this file, rotated past --max-daemon-log-bytes with 3 kept; "
        "default: stderr, for systemd's journal",
    ),
]


# What `ArgumentParser.add_subparsers` returns: each command adds its parser to it (generic
# only to type checkers, hence the quotes).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_serve_command(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the daemon (API, git, deploy worker, Traefik)")
    for flag, env, value, about in SERVE_FLAGS:
        serve.add_argument(flag, default=env_or(env, value), help=f"{about} (TEMPS_{env})")
    serve.add_argument(
        "--build-concurrency",
        type=int,
        default=int(env_or("BUILD_CONCURRENCY", "2")),
        help="builds that may run at once across apps (TEMPS_BUILD_CONCURRENCY)",
    )
    limits = serve.add_argument_group("limits (README, Limits)")
    for flag, env, default, help_text in LIMIT_FLAGS:
        limits.add_argument(
            flag,
            type=float,
            default=float(env_or(env, str(default))),
            help=f"{help_text} (TEMPS_{env}, default {default})",
        )


def _limits(args: argparse.Namespace) -> dict[str, int | float]:
    """Each limit flag's value, as its Settings field holds it (a whole number or seconds)."""
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    values: dict[str, int | float] = {}
    for flag, *_ in LIMIT_FLAGS:
        name = flag.removeprefix("--").replace("-", "_")
        value = getattr(args, name)
        name = SETTING_OF_FLAG.get(name, name)
        values[name] = int(value) if isinstance(defaults[name], int) else value
    return values


def _whole(text: str, flag: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"{flag} takes a whole number of at least 1, got {text!r}")
    return int(text)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        home=Path(args.home).expanduser().resolve(),
        listen=Address.parse(args.listen),
        http=Address.parse(args.http),
        traefik_api=Address.parse(args.traefik_api),
        domain=args.domain.lower(),
        https=Address.parse(args.https) if args.https else None,
        acme_email=args.acme_email,
        acme_ca=ACME_CA_NAMES.get(args.acme_ca, args.acme_ca),
        acme_cert_hours=_whole(args.acme_cert_hours, "--acme-cert-hours"),
        control_host=args.control_host.lower() or None,
        build_concurrency=args.build_concurrency,
        log_file=Path(args.log_file).expanduser().resolve() if args.log_file else None,
        forwarded_allow_ips=tuple(
            ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()
        ),
        runtime=args.runtime,
        registry=args.registry,
        **_limits(args),  # type: ignore[arg-type]
    )


def serve(settings: Settings) -> None:
    import uvicorn

    from receiver.app import create_app
    from receiver.logs import configure

    # Everything the daemon (and its Traefik) creates under the home is its own: tokens,
    # sealed secrets, the database, logs (its own log file too, opened next).
    os.umask(0o077)
    configure(log_file=settings.log_file, max_bytes=settings.max_daemon_log_bytes)
    uvicorn.run(
        create_app(settings),
        host=settings.listen.host,
        port=settings.listen.port,
        log_level="warning",
        log_config=None,  # uvicorn's own lines go through configure()'s handler too
        access_log=False,
        timeout_graceful_shutdown=5,
        # uvicorn believes X-Forwarded-For from loopback by default: any local client could
        # then name a new address per request (and a fresh rate-limit counter with it).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
    )
