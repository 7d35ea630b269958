"""`temps apps create|list|destroy`: the apps themselves.

`temps apps destroy [APP] --confirm APP` removes an app for good (admin): the app is named
twice, as `heroku apps:destroy --confirm` asks, so that neither a slip of the shell nor an
app inferred from the wrong repository's remote destroys one."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("apps",)


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    apps = client_parser("apps", "create, list or destroy apps")
    apps.add_argument("action", choices=["create", "list", "destroy"])
    apps.add_argument("words", nargs="*", metavar="APP")
    apps.add_argument("--confirm", metavar="APP", help="destroy: the app's name once more")
    apps.add_argument(
        "--volumes", action="store_true", help="destroy: its named volumes and their data too"
    )


def run(client: Client, args: argparse.Namespace) -> None:
    if args.action == "create":
        if len(args.words) != 1:
            sys.exit("temps: apps create NAME")
        print(json.dumps(client.call("POST", "/api/apps", json={"name": args.words[0]}), indent=2))
    elif args.action == "destroy":
        destroy(client, args)
    else:
        for app in client.call("GET", "/api/apps"):
            live = app["live_release"]
            version = live["version"] if live else "-"
            state = "  (being destroyed)" if app.get("destroying") else ""
            print(f"{app['name']:<32} {version:<6} {counts(app):<24} {app['url']}{state}")


def destroy(client: Client, args: argparse.Namespace) -> None:
    if len(args.words) > 1:
        sys.exit("temps: apps destroy [APP] --confirm APP")
    app, _ = take_app(args.app_flag, args.words, 1)
    if args.confirm is None:
        sys.exit(
            f"temps: destroying {app} removes its containers, images, repository and records "
            f"for good; confirm with `temps apps destroy {app} --confirm {app}`"
        )
    query = {"confirm": args.confirm, **({"volumes": "true"} if args.volumes else {})}
    answer = client.call("DELETE", f"/api/apps/{quote(app, safe='')}?{urlencode(query)}")
    print(summary(answer))


def summary(answer: dict[str, Any]) -> str:
    """What a destroy removed and kept, in a few lines."""
    removed, kept = answer["removed"], answer["kept"]
    parts = [
        plural(len(removed["containers"]), "container"),
        plural(len(removed["images"]), "image"),
        plural(removed["releases"], "release"),
        plural(len(removed["tokens"]), "token"),
        plural(len(removed["domains"]), "domain"),
        plural(len(removed["certificates"]), "uploaded certificate"),
    ]
    if removed["volumes"]:
        parts.append(plural(len(removed["volumes"]), "volume"))
    if removed["repository"]:
        parts.append("its repository")
    lines = [f"{answer['app']} destroyed: {', '.join(parts)} removed"]
    for volume in kept["volumes"]:
        lines.append(f"kept volume {volume} (its data; remove it with `docker volume rm`)")
    return "\n".join(lines)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def counts(view: dict[str, Any]) -> str:
    """`web 2/2 worker 0/1 (stopped)`: each process type's containers running of wanted."""
    found = view.get("processes") or {}
    return (
        " ".join(
            f"{process} {c['running']}/{c['wanted']}" + (" (stopped)" if c["stopped"] else "")
            for process, c in found.items()
        )
        or "-"
    )
