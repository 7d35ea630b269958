"""The `temps` client commands: a thin layer over the REST API."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from pipeline.deploy.strategies import Strategy
from receiver.cli import (
    apps,
    backups,
    cron,
    hosting,
    logs,
    previews,
    registry,
    run,
    session,
    statuses,
)
from receiver.cli.appwords import settings_start, take_app
from receiver.cli.client import Client
from receiver.cli.target import resolve

ClientParser = Callable[..., argparse.ArgumentParser]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
SERVE_HELP = "run the daemon (API, git, deploy worker, Traefik)"


def add_run_commands(commands: Commands) -> None:
    """`temps run` and `temps runs` alone: a run's parser does not build the 25 others."""
    run.add_commands(client_parser_of(commands))


def client_parser_of(commands: Commands) -> ClientParser:
    """A maker of client commands' parsers, each with the flags every client command takes."""

    def client_parser(name: str, help_text: str, *, of_app: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--url", help="daemon URL (TEMPS_URL; default: `temps login`'s)")
        parser.add_argument(
            "--home", help="home dir holding admin-token (TEMPS_HOME; default: the install's)"
        )
        if of_app:
            parser.add_argument(
                "-a",
                "--app",
                dest="app_flag",
                metavar="APP",
                help="the app (default: the one the repository's `temps` remote deploys)",
            )
        return parser

    return client_parser


def add_client_commands(commands: Commands, env: Callable[[str, str], str]) -> None:
    client_parser = client_parser_of(commands)
    apps.add_commands(client_parser)
    previews.add_commands(client_parser)
    cron.add_commands(client_parser)
    releases = client_parser(
        "releases", "list an app's releases; `releases output [APP] [N]`: a release's deploy log"
    )
    releases.add_argument("words", nargs="*", metavar="[APP] | output [APP] [N]")
    releases.add_argument(
        "--follow", "-f", action="store_true", help="output: follow a deploy as it runs"
    )
    rollback = client_parser("rollback", "roll back to release N (default: the previous live one)")
    rollback.add_argument("words", nargs="*", metavar="[APP] [N]")
    config = client_parser("config", "get, set or unset environment variables")
    config.add_argument("action", choices=["get", "set", "unset"])
    config.add_argument("words", nargs="*", metavar="[APP] KEY=VALUE | KEY")
    marking = config.add_mutually_exclusive_group()
    marking.add_argument(
        "--secret",
        action="store_true",
        default=None,
        help="set: mark the variables secret (masked, and kept from previews)",
    )
    marking.add_argument(
        "--not-secret", dest="secret", action="store_false", help="set: unmark them"
    )
    logs.add_commands(client_parser)
    deploy = client_parser(
        "deploy", "deploy a commit already pushed (default: the live one), or an image"
    )
    deploy.add_argument("words", nargs="*", metavar="APP")
    chosen = deploy.add_mutually_exclusive_group()
    chosen.add_argument("--commit")
    chosen.add_argument("--image", metavar="REGISTRY/NAME:TAG", help="pull and deploy this image")
    deploy.add_argument("--strategy", choices=list(Strategy))
    canary = client_parser("canary", "promote or abort an app's running canary (admin)")
    canary.add_argument("action", choices=["promote", "abort"])
    canary.add_argument("words", nargs="*", metavar="APP")
    ps = client_parser(
        "ps",
        "an app's containers; `ps scale [APP] web=N` sets its formation; "
        "`ps stop|start [APP] [PROCESS...]` stops or starts it on purpose",
    )
    ps.add_argument(
        "words", nargs="*", metavar="[APP] | scale [APP] web=N | stop [APP] [PROCESS] | start"
    )
    hosting.add_commands(client_parser)
    backups.add_commands(client_parser, commands)
    build = client_parser(
        "build", "`build show [APP]`: the Dockerfile the live commit builds with (to eject it)"
    )
    build.add_argument("action", choices=["show"])
    build.add_argument("words", nargs="*", metavar="APP")
    build.add_argument("--commit", help="another commit pushed to the app (default: the live one)")
    tokens = client_parser(
        "tokens", "create, list or revoke API and git tokens (admin)", of_app=False
    )
    tokens.add_argument("action", choices=["create", "list", "revoke"])
    tokens.add_argument("name", nargs="?", help="a name for create, the id for revoke")
    tokens.add_argument("--scope", choices=["admin", "deploy"], default="deploy")
    tokens.add_argument("--app", help="the app a deploy token may act on")
    client_parser(
        "nodes", "where apps run: the engine, or each Swarm node and its containers", of_app=False
    )
    session.add_commands(client_parser)
    run.add_commands(client_parser)
    registry.add_commands(client_parser)
    statuses.add_commands(client_parser)
    hook = commands.add_parser("hook", help="install the deploy hook into a bare repository")
    hook.add_argument("action", choices=["install"])
    hook.add_argument("repo", help="path of the bare repository")
    hook.add_argument("--app", required=True)
    hook.add_argument("--url", default=env("URL", "http://" + env("LISTEN", "127.0.0.1:7000")))
    hook.add_argument(
        "--token",
        default=os.environ.get("TEMPS_TOKEN"),
        help="a token allowed to deploy the app (TEMPS_TOKEN)",
    )
    hook.add_argument("--branch", default="main", help="the branch of this repository that deploys")


def run_client(args: argparse.Namespace) -> None:
    if args.command == "hook":
        install_hook(args)
        return
    if args.command == "restore-home":
        backups.restore_home(args)
        return
    if args.command in session.COMMANDS:
        session.run(args)
        return
    if args.command in run.COMMANDS:
        run.run(args)
        return
    target = resolve(args.url, args.home)
    client = Client(target.url, target.token, target.ca_file)
    command = args.command
    if command in apps.COMMANDS:
        apps.run(client, args)
    elif command in previews.COMMANDS:
        previews.run(client, args)
    elif command in cron.COMMANDS:
        cron.run(client, args)
    elif command == "releases" and args.words[:1] == ["output"]:
        logs.run_output(client, args)
    elif command == "releases":
        app, _ = take_app(args.app_flag, args.words, 1)
        for r in client.call("GET", f"/api/apps/{app}/releases"):
            reason = f"  {r['failure_reason']}" if r["failure_reason"] else ""
            what = r["commit"][:12] or r.get("pulled") or ""
            print(f"{r['version']:<6} {r['state']:<16} {r['source']:<9} {what}{reason}")
    elif command == "rollback":
        app, number = _app_and_number(args)
        body = {"release": number} if number else {}
        _release_line(client.call("POST", f"/api/apps/{app}/rollback?wait=true", json=body))
    elif command == "deploy":
        app, _ = take_app(args.app_flag, args.words, 1)
        body = {"commit": args.commit, "image": args.image, "strategy": args.strategy}
        _release_line(client.call("POST", f"/api/apps/{app}/deploy?wait=true", json=body))
    elif command == "canary":
        app, _ = take_app(args.app_flag, args.words, 1)
        _release_line(client.call("POST", f"/api/apps/{app}/canary/{args.action}"))
    elif command == "config":
        _config(client, args)
    elif command == "build":
        _build_show(client, args)
    elif command == "tokens":
        _tokens(client, args)
    elif command == "ps":
        _ps(client, args.app_flag, args.words)
    elif command == "nodes":
        for node in client.call("GET", "/api/nodes"):
            where = f"{node['name']} ({node['address']})"
            state = f"{node['role']} {node['state']} {node['availability']}"
            print(f"{where:<36}{state:<24}{len(node['containers'])} running")
            for name in node["containers"]:
                print(f"    {name}")
    elif command in registry.COMMANDS:
        registry.run(client, args)
    elif command in statuses.COMMANDS:
        statuses.run(client, args)
    elif command in hosting.COMMANDS:
        hosting.run(client, args)
    elif command in backups.COMMANDS:
        backups.run(client, args)
    elif command in logs.COMMANDS:
        logs.run(client, args)


def _app_and_number(args: argparse.Namespace) -> tuple[str, int | None]:
    """`[APP] [N]`: a release number is digits, which no app name is."""
    words = list(args.words)
    number = int(words.pop()) if words and words[-1].isdigit() else None
    if len(words) > 1:
        sys.exit(f"temps: {args.command} [APP] [N]")
    app, _ = take_app(args.app_flag, words, 1)
    return app, number


def _ps(client: Client, given: str | None, words: list[str]) -> None:
    verb = words[0] if words and words[0] in ("scale", "stop", "start") else None
    rest = words[1:] if verb else words
    if verb == "scale":
        start = settings_start(rest)
        if start > 1 or start == len(rest):
            sys.exit("temps: ps scale [APP] web=N")
        app, _ = take_app(given, rest[:start], 1)
        body: dict[str, int] = {}
        for pair in rest[start:]:
            process, sep, count = pair.partition("=")
            if not sep or not count.isdigit():
                sys.exit(f"temps: expected PROCESS=COUNT, got {pair!r}")
            body[process] = int(count)
        answer = client.call("PATCH", f"/api/apps/{app}/formation", json=body)
    elif verb in ("stop", "start"):
        app, processes = take_app(given, rest, 2, least=1)
        chosen = {"processes": processes}
        answer = client.call("POST", f"/api/apps/{app}/{verb}", json=chosen)
    else:
        app, _ = take_app(given, rest, 1)
        answer = client.call("GET", f"/api/apps/{app}/formation")
    wanted = " ".join(f"{k}={v}" for k, v in answer["formation"].items())
    running = f" running: {apps.counts(answer)}" if answer["processes"] else ""
    print(f"formation: {wanted} (live: {answer['live_release'] or '-'}){running}")
    for c in answer["containers"]:
        uptime = f"up {c['uptime']:.0f}s" if c["uptime"] is not None else c["state"]
        node = c.get("node") or "-"
        print(f"{c['process']:<8}{c['container']:<44}{c['release']:<7}{uptime:<14}{node}")
    for left in answer.get("leaving", []):
        print(_leaving_line(left))
    if verb is None:
        # Releases kept for skew protection: reached by the requests that name them.
        for kept in client.call("GET", f"/api/apps/{app}").get("kept_releases", []):
            until = time.strftime("%H:%M:%S", time.localtime(kept["until"]))
            for container in kept["containers"]:
                print(f"{'kept':<8}{container:<44}{kept['release']:<7}until {until}")


def _leaving_line(left: dict[str, Any]) -> str:
    """`leaving v3  temps-app-v3  200 connections  handover in 1h59m` (or `handing over`)."""
    held = f"{left['connections']} connection{'s' if left['connections'] != 1 else ''}"
    if left["handing_over"]:
        when = "handing over"
    elif left["handover_at"] is not None:
        when = f"handover in {_span(max(left['handover_at'] - time.time(), 0))}"
    else:
        when = "draining"
    return f"{'leaving':<8}{left['container']:<44}{left['release']:<7}{held:<18}{when}"


def _span(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _config(client: Client, args: argparse.Namespace) -> None:
    words: list[str] = args.words
    if args.action == "set":
        start = settings_start(words)
        if start > 1:
            sys.exit(f"temps: expected KEY=VALUE, got {words[1]!r}")
        app, pairs = take_app(args.app_flag, words[:start], 1)[0], words[start:]
    elif args.action == "unset":
        app, pairs = take_app(args.app_flag, words, 2, least=1)
    else:
        app, pairs = take_app(args.app_flag, words, 1)
    path = f"/api/apps/{app}/config"
    if args.action == "get":
        answer = client.call("GET", path)
    elif args.action == "set":
        env: dict[str, str | None] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                sys.exit(f"temps: expected KEY=VALUE, got {pair!r}")
            env[key] = value
        change: dict[str, object] = {"env": env}
        if args.secret is not None:
            change["secret"] = args.secret
        answer = client.call("PATCH", path + "?wait=true", json=change)
    else:
        answer = client.call("PATCH", path + "?wait=true", json={"env": dict.fromkeys(pairs)})
    secret = set(answer.get("secrets", []))
    for key, value in sorted(answer["env"].items()):
        print(f"{key}={value}" + ("  (secret)" if key in secret else ""))
    if answer.get("release"):
        _release_line(answer["release"])


def _build_show(client: Client, args: argparse.Namespace) -> None:
    """The Dockerfile alone on stdout (`> Dockerfile` ejects it), what chose it on stderr."""
    app, _ = take_app(args.app_flag, args.words, 1)
    query = f"?commit={args.commit}" if args.commit else ""
    answer = client.call("GET", f"/api/apps/{app}/build{query}")
    chosen = answer["detected"] or "the repository's own Dockerfile"
    print(f"temps: {answer['commit'][:12]}: {chosen}", file=sys.stderr)
    print(answer["dockerfile"], end="" if answer["dockerfile"].endswith("\n") else "\n")


def _tokens(client: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        for row in client.call("GET", "/api/tokens"):
            state = "revoked" if row["revoked_at"] else "active"
            scope = f"{row['scope']}:{row['app'] or '*'}"
            print(f"{row['id']:<5} {row['name']:<24} {scope:<40} {state}")
    elif not args.name:
        sys.exit(
            f"temps: tokens {args.action} needs a {'name' if args.action == 'create' else 'id'}"
        )
    elif args.action == "create":
        body = {"name": args.name, "scope": args.scope, "app": args.app}
        created = client.call("POST", "/api/tokens", json=body)
        print(created["token"])
        print("temps: shown once; store it now", file=sys.stderr)
    else:
        response = client.http.delete(f"/api/tokens/{args.name}")
        if response.status_code != 204:
            sys.exit(f"temps: {response.status_code}: {response.text}")
        print(f"token {args.name} revoked")


def _release_line(release: dict[str, Any]) -> None:
    reason = f": {release['failure_reason']}" if release.get("failure_reason") else ""
    print(f"{release['version']} {release['state']}{reason}")
    if release["state"] not in ("live", "queued"):
        sys.exit(1)


def install_hook(args: argparse.Namespace) -> None:
    """Copy the deploy hook into a bare repository and record where and what it deploys."""
    import shutil
    import subprocess
    from importlib.resources import files

    repo = Path(args.repo).resolve()
    if not (repo / "HEAD").exists() or not (repo / "objects").is_dir():
        sys.exit(f"temps: {repo} is not a bare git repository")
    script = files("hooks").joinpath("post-receive")
    for name in ("pre-receive", "post-receive"):
        target = repo / "hooks" / name
        target.parent.mkdir(exist_ok=True)
        with script.open("rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        target.chmod(0o755)
    settings = {"temps.url": args.url, "temps.app": args.app, "temps.branch": args.branch}
    if args.token:
        settings["temps.token"] = args.token
    for key, value in settings.items():
        subprocess.run(["git", "--git-dir", str(repo), "config", key, value], check=True)
    print(f"temps: {repo} now deploys {args.branch} to {args.app} at {args.url}")
