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
    )


def serve(settings: Settings) -> None:
    import uvicorn

    from receiver.app import create_app
    from receiver.logs import configure

    configure()
    uvicorn.run(
        create_app(settings),
        host=settings.listen.host,
        port=settings.listen.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
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
