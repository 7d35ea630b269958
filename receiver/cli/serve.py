"""`temps serve`: a flag for each field of `Settings`, also read as its `TEMPS_` variable,
and the daemon's start.

The flags are made here from the model's fields rather than by pydantic-settings'
CliSettingsSource: that source writes Python types and factories into --help and owns the
parser, while `temps serve` is one command of a parser whose other commands are a client,
and its help names the TEMPS_ variable beside each flag.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
from collections.abc import Callable

from pydantic import AliasChoices, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource

from pipeline import memory
from pipeline.errors import InvalidInput
from pipeline.settings import Flag, Settings
from receiver.cli.commands import SERVE_HELP, Commands


def flag_fields() -> dict[str, FieldInfo]:
    """The fields `temps serve` has a flag and a TEMPS_ variable for."""
    fields = Settings.model_fields.items()
    return {name: info for name, info in fields if Flag.NONE not in info.metadata}


def names_of(field: str) -> tuple[str, ...]:
    """The field's own name, then the older names its flag and variable still answer to."""
    alias = Settings.model_fields[field].validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else []
    return (field, *(name for name in choices if isinstance(name, str) and name != field))


def variables_of(field: str) -> list[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return [f"{prefix}{name.upper()}" for name in names_of(field)]


def worded(error: ErrorDetails) -> str:
    """What is wrong with a value, in a few words, for the flag or variable that gave it."""
    kind, value = error["type"], error["input"]
    if kind == "text":
        return error["msg"]  # worded by the field's reader
    if kind.startswith("int_"):
        return f"expected a whole number, got {value!r}"
    if kind.startswith("float_"):
        return f"expected a number, got {value!r}"
    if kind.startswith("bool_"):
        return f"expected 1 or 0 (true or false), got {value!r}"
    return f"{error['msg']}, got {value!r}"


@functools.cache
def _adapter(field: str) -> TypeAdapter[object]:
    return TypeAdapter(Settings.model_fields[field].rebuild_annotation())


def _reader(field: str) -> Callable[[str], object]:
    """The flag's type: its text read as the field's annotation reads it."""

    def read(text: str) -> object:
        try:
            return _adapter(field).validate_python(text)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(worded(exc.errors()[0])) from None

    return read


def _shown(info: FieldInfo) -> str:
    default = info.get_default(call_default_factory=True)
    if isinstance(default, bool):
        return "on" if default else "off"
    return "none" if default in (None, "", ()) else str(default)


# What `ArgumentParser.add_subparsers` returns: each command adds its parser to it (generic
# only to type checkers, hence the quotes).


def add_serve_command(commands: Commands) -> None:
    serve = commands.add_parser("serve", help=SERVE_HELP)
    limits = serve.add_argument_group(Flag.LIMIT.value)
    for name, info in flag_fields().items():
        group = limits if Flag.LIMIT in info.metadata else serve
        variables = " or ".join(variables_of(name))
        about = f"{info.description} ({variables}, default {_shown(info)})"
        # A switch takes no value: given, it is on (its variable reads 1/0, true/false).
        taken = (
            {"action": "store_const", "const": True}
            if info.annotation is bool
            else {"type": _reader(name)}
        )
        group.add_argument(
            *(f"--{flag.replace('_', '-')}" for flag in names_of(name)),
            dest=name,
            default=argparse.SUPPRESS,  # not given: its variable, else the field's default
            help=about.replace("%", "%%"),
            **taken,
        )


def settings_from(args: argparse.Namespace) -> Settings:
    """Each flag given, else its TEMPS_ variable, else the field's default."""
    flags = flag_fields()
    given = {name: getattr(args, name) for name in flags if hasattr(args, name)}
    found = {name: text for name, text in EnvSettingsSource(Settings)().items() if name in flags}
    try:
        return Settings(**(found | given))
    except ValidationError as exc:  # a flag's text was read already: a variable's is wrong
        error = exc.errors()[0]
        variables = " or ".join(variables_of(str(error["loc"][0])))
        raise InvalidInput(f"{variables}: {worded(error)}") from None


def raise_open_files_limit() -> None:
    """The soft limit of open files up to the hard one. A push opens every pack of its
    repository (dulwich), and systemd starts a service at 1,024: with a few hundred packs,
    pushes to a busy app were refused with "Too many open files" (bench/soak.py)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def serve(settings: Settings) -> None:
    memory.hold_collections()  # until the daemon has started (receiver.app's lifespan)
    import uvicorn

    from receiver.app import create_app
    from receiver.logs import configure

    # Everything the daemon (and its Traefik) creates under the home is its own: tokens,
    # sealed secrets, the database, logs (its own log file too, opened next).
    os.umask(0o077)
    configure(log_file=settings.log_file, max_bytes=settings.max_daemon_log_bytes)
    raise_open_files_limit()
    memory.limit_arenas()
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
