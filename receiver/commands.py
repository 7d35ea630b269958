"""The `temps` client commands: a thin layer over the REST API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

API_TIMEOUT = 930.0  # a ?wait=true call may block for a whole deploy


class Client:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            timeout=API_TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            sys.exit(f"temps: cannot reach the daemon at {self.http.base_url}: {exc}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            sys.exit(f"temps: {response.status_code}: {detail}")
        return response.json() if response.content else None

    def stream(self, path: str) -> None:
        with self.http.stream("GET", path) as response:
            if response.status_code >= 400:
                sys.exit(f"temps: {response.status_code}: {response.read().decode()}")
            for text in response.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()


def add_client_commands(commands: Any, env: Any) -> None:
    def client_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--url",
            default=env("URL", "http://" + env("LISTEN", "127.0.0.1:7000")),
            help="daemon URL (TEMPS_URL)",
        )
        parser.add_argument(
            "--home",
            default=env("HOME", str(Path.home() / ".temps")),
            help="home dir holding admin-token (TEMPS_HOME)",
        )
        return parser

    apps = client_parser("apps", "create or list apps")
    apps.add_argument("action", choices=["create", "list"])
    apps.add_argument("name", nargs="?")
    releases = client_parser("releases", "list an app's releases")
    releases.add_argument("app")
    rollback = client_parser("rollback", "roll back to release N (default: the previous live one)")
    rollback.add_argument("app")
    rollback.add_argument("release", nargs="?", type=int)
    config = client_parser("config", "get, set or unset environment variables")
    config.add_argument("action", choices=["get", "set", "unset"])
    config.add_argument("app")
    config.add_argument("pairs", nargs="*", help="KEY=VALUE for set, KEY for unset")
    logs = client_parser("logs", "show a release's log (default: the newest release)")
    logs.add_argument("app")
    logs.add_argument("release", nargs="?", type=int)
    logs.add_argument("--follow", "-f", action="store_true")
    deploy = client_parser("deploy", "deploy a commit already pushed (default: the live one)")
    deploy.add_argument("app")
    deploy.add_argument("--commit")
    deploy.add_argument("--strategy", choices=["blue-green", "recreate"])
    domains = client_parser("domains", "list, add or remove an app's custom domains")
    domains.add_argument("action", choices=["list", "add", "remove"])
    domains.add_argument("app")
    domains.add_argument("host", nargs="?", help="the host name to add or remove")
    https = client_parser("https", "show or set an app's HTTP->HTTPS redirect and HSTS")
    https.add_argument("app")
    https.add_argument("--redirect", choices=["on", "off"])
    https.add_argument("--hsts", type=int, metavar="SECONDS", help="0 turns HSTS off")
    certs = client_parser("certs", "list certificates, or add or remove one of your own (admin)")
    certs.add_argument("action", choices=["list", "add", "remove"])
    certs.add_argument("host", nargs="?")
    certs.add_argument("--cert", type=Path, help="PEM: the host's certificate, then its chain")
    certs.add_argument("--key", type=Path, help="PEM: its unencrypted private key")
    tokens = client_parser("tokens", "create, list or revoke API and git tokens (admin)")
    tokens.add_argument("action", choices=["create", "list", "revoke"])
    tokens.add_argument("name", nargs="?", help="a name for create, the id for revoke")
    tokens.add_argument("--scope", choices=["admin", "deploy"], default="deploy")
    tokens.add_argument("--app", help="the app a deploy token may act on")
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


def token_for(home: str) -> str:
    token = os.environ.get("TEMPS_TOKEN")
    if token:
        return token
    path = Path(home).expanduser() / "admin-token"
    try:
        return path.read_text().strip()
    except OSError:
        sys.exit(f"temps: no token: set TEMPS_TOKEN or make {path} readable")


def run_client(args: argparse.Namespace) -> None:
    if args.command == "hook":
        install_hook(args)
        return
    client = Client(args.url, token_for(args.home))
    command = args.command
    if command == "apps":
        if args.action == "create":
            if not args.name:
                sys.exit("temps: apps create NAME")
            _print(client.call("POST", "/api/apps", json={"name": args.name}))
        else:
            for app in client.call("GET", "/api/apps"):
                live = app["live_release"]
                print(f"{app['name']:<32} {live['version'] if live else '-':<6} {app['url']}")
    elif command == "releases":
        for r in client.call("GET", f"/api/apps/{args.app}/releases"):
            reason = f"  {r['failure_reason']}" if r["failure_reason"] else ""
            print(f"{r['version']:<6} {r['state']:<16} {r['source']:<9} {r['commit'][:12]}{reason}")
    elif command == "rollback":
        body = {"release": args.release} if args.release else {}
        _release_line(client.call("POST", f"/api/apps/{args.app}/rollback?wait=true", json=body))
    elif command == "deploy":
        body = {"commit": args.commit, "strategy": args.strategy}
        _release_line(client.call("POST", f"/api/apps/{args.app}/deploy?wait=true", json=body))
    elif command == "config":
        _config(client, args)
    elif command == "tokens":
        _tokens(client, args)
    elif command == "domains":
        _domains(client, args)
    elif command == "https":
        _https(client, args)
    elif command == "certs":
        _certs(client, args)
    elif command == "logs":
        number = args.release or client.call("GET", f"/api/apps/{args.app}/releases")[0]["number"]
        follow = "true" if args.follow else "false"
        client.stream(f"/api/apps/{args.app}/releases/{number}/log?follow={follow}")


def _domains(client: Client, args: argparse.Namespace) -> None:
    path = f"/api/apps/{args.app}/domains"
    if args.action != "list" and not args.host:
        sys.exit(f"temps: domains {args.action} APP HOST")
    if args.action == "add":
        answer = client.call("POST", path, json={"host": args.host})
    elif args.action == "remove":
        answer = client.call("DELETE", f"{path}/{args.host}")
    else:
        answer = client.call("GET", path)
    for entry in answer["hosts"]:
        default = "  (default)" if entry["host"] == answer["default"] else ""
        print(f"{entry['host']}{default}{_certificate_line(entry['certificate'])}")


def _https(client: Client, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {}
    if args.redirect:
        body["redirect"] = args.redirect == "on"
    if args.hsts is not None:
        body["hsts_seconds"] = args.hsts
    if body:
        answer = client.call("PATCH", f"/api/apps/{args.app}/https", json=body)
    else:
        answer = client.call("GET", f"/api/apps/{args.app}/domains")
    print(f"https: {'on' if answer['https'] else 'off (the daemon runs without --https)'}")
    print(f"redirect: {'on' if answer['redirect'] else 'off'}")
    print(f"hsts: {answer['hsts_seconds'] or 'off'}")


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


def _config(client: Client, args: argparse.Namespace) -> None:
    path = f"/api/apps/{args.app}/config"
    if args.action == "get":
        answer = client.call("GET", path)
    elif args.action == "set":
        env: dict[str, str | None] = {}
        for pair in args.pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                sys.exit(f"temps: expected KEY=VALUE, got {pair!r}")
            env[key] = value
        answer = client.call("PATCH", path + "?wait=true", json={"env": env})
    else:
        answer = client.call("PATCH", path + "?wait=true", json={"env": dict.fromkeys(args.pairs)})
    for key, value in sorted(answer["env"].items()):
        print(f"{key}={value}")
    if answer.get("release"):
        _release_line(answer["release"])


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


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


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
