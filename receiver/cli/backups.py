"""`temps backup create|list|verify|restore` (admin): an app's volumes, or with `--records`
the daemon's own records; and `temps restore-home`, offline, which rebuilds a home from a
records backup on a new host."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("backup",)
ACTIONS = ("create", "list", "verify", "restore", "s3-login")


def add_commands(
    client_parser: Callable[..., argparse.ArgumentParser],
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    backup = client_parser(
        "backup",
        "back up an app's volumes (or --records, the daemon's), verified by a restore into "
        "scratch; list, verify or restore them (admin)",
    )
    backup.add_argument("action", choices=ACTIONS)
    backup.add_argument("words", nargs="*", metavar="[APP] [ID]")
    backup.add_argument("--records", action="store_true", help="the daemon's records")
    backup.add_argument(
        "--with-key",
        action="store_true",
        help="create --records: the home's secret.key too (whoever holds the backup can "
        "then read every sealed value)",
    )
    backup.add_argument(
        "--stop",
        action="store_true",
        help="restore: stop the app's containers instead of putting it in maintenance",
    )
    home = commands.add_parser(
        "restore-home",
        help="rebuild a daemon's records in a new home from a records backup (offline)",
    )
    home.add_argument("backup", type=Path, help="the folder of a records backup")
    home.add_argument("--home", type=Path, required=True, help="the new home (not yet used)")
    home.add_argument(
        "--key", type=Path, help="the old home's secret.key, when the backup does not hold it"
    )


def run(client: Client, args: argparse.Namespace) -> None:
    if args.action == "s3-login":
        _s3_login(client, args.words)
        return
    if args.records:
        base, number = (
            "/api/backups/records",
            _number(args.words, 0 if args.action in ("create", "list") else 1),
        )
    else:
        full = {"create": 1, "list": 1}.get(args.action, 2)
        app, rest = take_app(args.app_flag, args.words, full)
        base, number = f"/api/apps/{app}/backups", _number(rest, full - 1)
    if args.action == "list":
        for backup in client.call("GET", base):
            print(_line(backup))
    elif args.action == "create":
        body = {"with_key": True} if args.records and args.with_key else None
        _judged(client.call("POST", base, json=body))
    elif args.action == "verify":
        _judged(client.call("POST", f"{base}/{number}/verify"))
    elif args.records:
        sys.exit("temps: records are restored offline: `temps restore-home BACKUP --home NEW`")
    else:
        done = client.call("POST", f"{base}/{number}/restore", json={"stop": args.stop})
        print(
            f"restored backup {done['backup']} of {done['app']} into {', '.join(done['volumes'])}: "
            f"{done['files']} files, {done['seconds']:.1f} s ({done['how']})"
        )


def _s3_login(client: Client, words: list[str]) -> None:
    """The access key as a word, the secret from stdin (never on the command line)."""
    if len(words) != 1:
        sys.exit("temps: backup s3-login ACCESS_KEY (the secret key on stdin)")
    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("secret key: ")
    else:
        secret = sys.stdin.readline().strip()
    client.call("PUT", "/api/backups/s3-keys", json={"access_key": words[0], "secret_key": secret})
    print("S3 keys sealed into the daemon's home")


def _number(words: list[str], wanted: int) -> int | None:
    if len(words) != wanted or not all(word.isdigit() for word in words):
        sys.exit("temps: backup create|list [APP] | verify|restore [APP] ID (or --records)")
    return int(words[0]) if words else None


def _line(backup: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(backup["started_at"]))
    size = f"{backup['size'] / 1e6:.1f} MB" if backup["size"] is not None else "-"
    why = f"  {backup['reason']}" if backup["state"] == "failed" else ""
    verification = backup["verification"] or "-"
    return f"{backup['id']:<6} {backup['state']:<8} {when}  {size:>10}  {verification}{why}"


def _judged(backup: dict[str, Any]) -> None:
    """A failed backup is said loudly, and the command exits 1."""
    print(_line(backup))
    if backup["state"] != "good":
        sys.exit(
            f"temps: backup {backup['id']} FAILED: {backup['reason'] or backup['verification']}"
        )


def restore_home(args: argparse.Namespace) -> None:
    from pipeline.backups.home import restore_home as rebuild
    from pipeline.errors import TempsError

    try:
        done = rebuild(args.backup.resolve(), args.home.resolve(), args.key)
    except TempsError as error:
        sys.exit(f"temps: {error}")
    rows = sum(done.tables.values())
    print(f"{done.home}: records restored ({len(done.tables)} tables, {rows} rows)")
    if done.key == "none":
        print(
            "no secret.key: sealed values (environments, secrets) stay unreadable until the "
            f"old home's secret.key is copied to {done.home / 'secret.key'} (mode 0600)"
        )
    else:
        print(f"secret.key {done.key}")
    print(f"start it with `temps serve --home {done.home}`")
