"""The `temps` client commands for where and how apps are served: domains, HTTPS,
certificates, storage, maintenance."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("domains", "https", "certs", "storage", "maintenance")
SWITCH = ("on", "off")


# command: (what it does, its actions, what follows the action)
SUBJECTS = {
    "domains": ("list, add or remove an app's custom domains", ("list", "add", "remove")),
    "certs": ("list certificates, or add or remove one of your own", ("list", "add", "remove")),
    "storage": ("list, mount or unmount an app's volumes (admin)", ("list", "mount", "unmount")),
}


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    parsers = {}
    for command, (about, actions) in SUBJECTS.items():
        parsers[command] = client_parser(command, about, of_app=command != "certs")
        parsers[command].add_argument("action", choices=actions)
    parsers["domains"].add_argument("words", nargs="*", metavar="[APP] [HOST]")
    parsers["certs"].add_argument("host", nargs="?")
    parsers["certs"].add_argument("--cert", type=Path, help="PEM: the certificate, then its chain")
    parsers["certs"].add_argument("--key", type=Path, help="PEM: its unencrypted private key")
    parsers["storage"].add_argument("words", nargs="*", metavar="[APP] [NAME:/path | NAME]")
    https = client_parser("https", "show or set an app's HTTP->HTTPS redirect and HSTS")
    https.add_argument("words", nargs="*", metavar="APP")
    https.add_argument("--redirect", choices=["on", "off"])
    https.add_argument("--hsts", type=int, metavar="SECONDS", help="0 turns HSTS off")
    maintenance = client_parser(
        "maintenance",
        "show an app's maintenance mode, or turn it on (its hosts answer 503 with its "
        "maintenance.html; its containers keep running) or off",
    )
    maintenance.add_argument("words", nargs="*", metavar="[APP] [on|off]")


def run(client: Client, args: argparse.Namespace) -> None:
    {
        "domains": _domains,
        "https": _https,
        "certs": _certs,
        "storage": _storage,
        "maintenance": _maintenance,
    }[args.command](client, args)


def _app_and_subject(args: argparse.Namespace) -> tuple[str, str | None]:
    """`list [APP]`, or `add|remove|mount|unmount [APP] SUBJECT`."""
    full = 1 if args.action == "list" else 2
    if len(args.words) > full:
        sys.exit(f"temps: {args.command} {args.action}: too many words: {' '.join(args.words)}")
    app, rest = take_app(args.app_flag, args.words, full)
    if full == 2 and not rest:
        what = {"mount": "NAME:/path", "unmount": "NAME"}.get(args.action, "HOST")
        sys.exit(f"temps: {args.command} {args.action} [APP] {what}")
    return app, rest[0] if rest else None


def _storage(client: Client, args: argparse.Namespace) -> None:
    app, volume = _app_and_subject(args)
    path = f"/api/apps/{app}/storage"
    if args.action == "mount":
        name, sep, where = (volume or "").partition(":")
        if not sep:
            sys.exit("temps: storage mount [APP] NAME:/path")
        client.call("POST", path, json={"name": name, "path": where})
        print(f"{name} will be mounted at {where} from the next deploy of {app}")
        return
    if args.action == "unmount":
        client.call("DELETE", f"{path}/{volume}")
        print(f"{volume} is not mounted from the next deploy on; its data is kept")
        return
    for mount in client.call("GET", path):
        print(f"{mount['name']:<32} {mount['path']:<32} {mount['volume']}")


def _domains(client: Client, args: argparse.Namespace) -> None:
    app, host = _app_and_subject(args)
    path = f"/api/apps/{app}/domains"
    if args.action == "add":
        answer = client.call("POST", path, json={"host": host})
    elif args.action == "remove":
        answer = client.call("DELETE", f"{path}/{host}")
    else:
        answer = client.call("GET", path)
    for entry in answer["hosts"]:
        default = "  (default)" if entry["host"] == answer["default"] else ""
        print(f"{entry['host']}{default}{_certificate_line(entry['certificate'])}")


def _https(client: Client, args: argparse.Namespace) -> None:
    app, _ = take_app(args.app_flag, args.words, 1)
    body: dict[str, bool | int] = {}
    if args.redirect:
        body["redirect"] = args.redirect == "on"
    if args.hsts is not None:
        body["hsts_seconds"] = args.hsts
    if body:
        answer = client.call("PATCH", f"/api/apps/{app}/https", json=body)
    else:
        answer = client.call("GET", f"/api/apps/{app}/domains")
    print(f"https: {'on' if answer['https'] else 'off (the daemon runs without --https)'}")
    print(f"redirect: {'on' if answer['redirect'] else 'off'}")
    print(f"hsts: {answer['hsts_seconds'] or 'off'}")


def _maintenance(client: Client, args: argparse.Namespace) -> None:
    words = list(args.words)
    switch = words.pop() if words and words[-1] in SWITCH else None
    if len(words) > 1:
        sys.exit(f"temps: maintenance [APP] [on|off], not: {' '.join(args.words)}")
    app, _ = take_app(args.app_flag, words, 1)
    path = f"/api/apps/{app}/maintenance"
    if switch is None:
        answer = client.call("GET", path)
    else:
        answer = client.call("PUT", path, json={"on": switch == "on"})
    if answer["on"]:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(answer["since"]))
        print(
            f"{app}: maintenance on since {since}; its hosts answer 503 "
            f"(Retry-After: {answer['retry_after']})"
        )
    else:
        print(f"{app}: maintenance off; its hosts are served by its live release")


def _certs(client: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        for cert in client.call("GET", "/api/certificates"):
            print(f"{cert['host']:<40}{_certificate_line(cert).strip()}")
        return
    if not args.host:
        sys.exit(f"temps: certs {args.action} HOST")
    if args.action == "remove":
        client.call("DELETE", f"/api/certificates/{args.host}")
        print(f"{args.host}: the ACME CA's certificate from now on")
        return
    if not (args.cert and args.key):
        sys.exit("temps: certs add HOST --cert FILE --key FILE")
    body = {"certificate": args.cert.read_text(), "key": args.key.read_text()}
    cert = client.call("PUT", f"/api/certificates/{args.host}", json=body)
    print(f"{cert['host']}{_certificate_line(cert)}")


def _certificate_line(certificate: dict[str, Any] | None) -> str:
    if certificate is None:
        return ""
    state, reason = certificate["state"], certificate["reason"]
    if state == "issued" and certificate["expires_at"]:
        expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(certificate["expires_at"]))
        state = f"issued, expires {expires}"
    return f"  [{certificate['source']}: {state}{f' ({reason})' if reason else ''}]"
