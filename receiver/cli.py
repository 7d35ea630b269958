"""`temps` on the command line: `temps serve` starts the daemon."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.errors import InvalidInput
from pipeline.settings import Address, Settings
from receiver.commands import add_client_commands, run_client


def _env(name: str, default: str) -> str:
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
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temps", description="git-push deploys with zero dropped requests"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the daemon (API, git, deploy worker, Traefik)")
    serve.add_argument(
        "--home",
        default=_env("HOME", str(Path.home() / ".temps")),
        help="state directory (TEMPS_HOME, default ~/.temps)",
    )
    serve.add_argument(
        "--listen",
        default=_env("LISTEN", "127.0.0.1:7000"),
        help="API and git address (TEMPS_LISTEN)",
    )
    serve.add_argument(
        "--http",
        default=_env("HTTP", "127.0.0.1:8080"),
        help="Traefik's web entrypoint (TEMPS_HTTP)",
    )
    serve.add_argument(
        "--domain",
        default=_env("DOMAIN", "localhost"),
        help="apps are served at <app>.<domain> (TEMPS_DOMAIN)",
    )
    serve.add_argument(
        "--traefik-api",
        default=_env("TRAEFIK_API", "127.0.0.1:7001"),
        help="Traefik's API, ping and metrics address, loopback (TEMPS_TRAEFIK_API)",
    )
    serve.add_argument(
        "--build-concurrency",
        type=int,
        default=int(_env("BUILD_CONCURRENCY", "2")),
        help="builds that may run at once across apps (TEMPS_BUILD_CONCURRENCY)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=_env("FORWARDED_ALLOW_IPS", ""),
        help="comma-separated proxy addresses whose X-Forwarded-For is believed "
        "(TEMPS_FORWARDED_ALLOW_IPS; default none: the peer address is the client)",
    )
    serve.add_argument(
        "--log-file",
        default=_env("LOG_FILE", ""),
        help="write the daemon's log to this file, rotated past --max-daemon-log-bytes with "
        "3 kept (TEMPS_LOG_FILE; default: stderr, for systemd's journal)",
    )
    limits = serve.add_argument_group("limits (README, Limits)")
    for flag, env, default, help_text in LIMIT_FLAGS:
        limits.add_argument(
            flag,
            type=float,
            default=float(_env(env, str(default))),
            help=f"{help_text} (TEMPS_{env}, default {default})",
        )
    add_client_commands(commands, _env)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        home=Path(args.home).expanduser().resolve(),
        listen=Address.parse(args.listen),
        http=Address.parse(args.http),
        traefik_api=Address.parse(args.traefik_api),
        domain=args.domain.lower(),
        build_concurrency=args.build_concurrency,
        max_push_bytes=int(args.max_push_bytes),
        max_object_bytes=int(args.max_object_bytes),
        max_unpacked_bytes=int(args.max_unpacked_bytes),
        max_request_bytes=int(args.max_request_bytes),
        max_webhook_bytes=int(args.max_webhook_bytes),
        max_fetch_bytes=int(args.max_fetch_bytes),
        fetch_timeout=args.fetch_timeout,
        build_timeout=args.build_timeout,
        build_memory_mb=int(args.build_memory_mb),
        build_pids=int(args.build_pids),
        max_env_vars=int(args.max_env_vars),
        max_log_lines=int(args.max_log_lines),
        max_log_bytes=int(args.max_log_bytes),
        max_traefik_log_bytes=int(args.max_traefik_log_bytes),
        log_file=Path(args.log_file).expanduser().resolve() if args.log_file else None,
        max_daemon_log_bytes=int(args.max_daemon_log_bytes),
        keep_release_logs=int(args.keep_release_logs),
        auth_failures_allowed=int(args.auth_failures),
        forwarded_allow_ips=tuple(
            ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()
        ),
    )


def serve(settings: Settings) -> None:
    import uvicorn

    from receiver.app import create_app
    from receiver.logs import configure

    configure(log_file=settings.log_file, max_bytes=settings.max_daemon_log_bytes)
    # Everything the daemon (and its Traefik) creates under the home is its own: tokens,
    # sealed secrets, the database, logs.
    os.umask(0o077)
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        run_client(args)
        return
    try:
        settings = settings_from(args)
    except InvalidInput as exc:
        sys.exit(f"temps: {exc}")
    serve(settings)


if __name__ == "__main__":
    main()
