"""`temps serve`'s flags and TEMPS_ variables, made from the Settings model: every flag is a
field, a variable sets its field, a flag wins over its variable, a bad value is named with
the flag or variable that gave it, and Settings built in code reads no variable."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.settings import LETSENCRYPT_STAGING, Address, Settings
from receiver.cli import build_parser, main
from receiver.cli.serve import flag_fields, names_of, settings_from

# Every flag `temps serve` had before its flags were made from the model: each still works.
FLAGS_BEFORE = [
    "--home",
    "--listen",
    "--http",
    "--domain",
    "--traefik-api",
    "--https",
    "--acme-email",
    "--acme-ca",
    "--acme-cert-hours",
    "--control-host",
    "--forwarded-allow-ips",
    "--runtime",
    "--registry",
    "--log-file",
    "--build-concurrency",
    "--max-push-bytes",
    "--max-object-bytes",
    "--max-unpacked-bytes",
    "--max-request-bytes",
    "--max-webhook-bytes",
    "--max-fetch-bytes",
    "--fetch-timeout",
    "--build-timeout",
    "--build-memory-mb",
    "--build-pids",
    "--build-cpu-shares",
    "--build-engine",
    "--max-env-vars",
    "--max-log-lines",
    "--max-log-bytes",
    "--max-traefik-log-bytes",
    "--max-daemon-log-bytes",
    "--keep-release-logs",
    "--auth-failures",
    "--acme-retry-seconds",
]


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none from the shell the tests run in."""
    for name in [name for name in os.environ if name.upper().startswith("TEMPS_")]:
        monkeypatch.delenv(name)


def settings_of(*argv: str) -> Settings:
    return settings_from(build_parser().parse_args(["serve", *argv]))


def serve_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    return capsys.readouterr().out


def test_every_flag_of_serve_help_is_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", serve_help(capsys))) - {"--help"}
    # A flag's name is its field's, or an older name the field answers to.
    field_of = {name: field for field in flag_fields() for name in names_of(field)}
    assert sorted(flag for flag in shown if flag[2:].replace("-", "_") not in field_of) == []
    assert set(field_of.values()) == set(flag_fields())
    # ...and every name of every field with a flag is shown, the flags of before among them.
    assert {f"--{name.replace('_', '-')}" for name in field_of} == shown
    assert set(FLAGS_BEFORE) <= shown


def test_without_flags_or_variables_the_settings_are_the_models_defaults(
    tmp_path: Path,
) -> None:
    home = tmp_path.resolve()
    assert settings_of("--home", str(home)) == Settings(home=home)


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("TEMPS_LISTEN", "0.0.0.0:7100", "listen", Address("0.0.0.0", 7100)),
        ("TEMPS_DOMAIN", "Apps.Example.com", "domain", "apps.example.com"),
        ("TEMPS_HTTPS", "[::1]:8443", "https", Address("::1", 8443)),
        ("TEMPS_HTTPS", "", "https", None),
        ("TEMPS_ACME_CA", "letsencrypt-staging", "acme_ca", LETSENCRYPT_STAGING),
        (
            "TEMPS_FORWARDED_ALLOW_IPS",
            "10.0.0.1, 10.0.0.2,",
            "forwarded_allow_ips",
            ("10.0.0.1", "10.0.0.2"),
        ),
        ("TEMPS_BUILD_CONCURRENCY", "5", "build_concurrency", 5),
        ("TEMPS_MAX_PUSH_BYTES", "1e6", "max_push_bytes", 1_000_000),
        ("TEMPS_FETCH_TIMEOUT", "12.5", "fetch_timeout", 12.5),
        ("TEMPS_AUTH_FAILURES", "55", "auth_failures_allowed", 55),  # its older name
        ("TEMPS_AUTH_FAILURES_ALLOWED", "56", "auth_failures_allowed", 56),
        ("TEMPS_PUBLISH_PORTS", "1", "publish_ports", True),
        ("TEMPS_PUBLISH_PORTS", "false", "publish_ports", False),
    ],
)
def test_a_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    text: str,
    field: str,
    value: object,
) -> None:
    monkeypatch.setenv(variable, text)
    assert getattr(settings_of("--home", str(tmp_path)), field) == value


def test_the_home_and_the_log_file_from_a_variable_are_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEMPS_HOME", "home")
    monkeypatch.setenv("TEMPS_LOG_FILE", "logs/daemon.log")
    settings = settings_of()
    assert settings.home == tmp_path.resolve() / "home"
    assert settings.log_file == tmp_path.resolve() / "logs" / "daemon.log"


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPS_LISTEN", "127.0.0.1:7100")
    monkeypatch.setenv("TEMPS_HTTP", "127.0.0.1:8100")
    monkeypatch.setenv("TEMPS_AUTH_FAILURES", "5")
    settings = settings_of(
        "--home", str(tmp_path), "--listen", "127.0.0.1:7200", "--auth-failures", "100000"
    )
    assert settings.listen == Address("127.0.0.1", 7200)
    assert settings.auth_failures_allowed == 100_000
    assert settings.http == Address("127.0.0.1", 8100)  # no flag: the variable


def test_a_switch_takes_no_value_and_wins_over_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert settings_of("--home", str(tmp_path)).publish_ports is False
    monkeypatch.setenv("TEMPS_PUBLISH_PORTS", "0")
    assert settings_of("--home", str(tmp_path), "--publish-ports").publish_ports is True
    assert "(TEMPS_PUBLISH_PORTS, default off)" in " ".join(serve_help(capsys).split())


def test_a_flag_wins_over_a_bad_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPS_LISTEN", "nonsense")
    assert settings_of("--home", str(tmp_path), "--listen", "127.0.0.1:7200").listen.port == 7200


def test_settings_built_in_code_read_no_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEMPS_DOMAIN", "elsewhere.example")
    monkeypatch.setenv("TEMPS_MAX_PUSH_BYTES", "1")
    settings = Settings(home=tmp_path)
    assert (settings.domain, settings.max_push_bytes) == ("localhost", 512 * 1024 * 1024)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "nonsense"], "argument --listen: expected HOST:PORT, got 'nonsense'"),
        (
            ["--build-concurrency", "many"],
            "argument --build-concurrency: expected a whole number, got 'many'",
        ),
        (
            ["--max-push-bytes", "lots"],
            "argument --max-push-bytes: expected a whole number, got 'lots'",
        ),
        (
            ["--acme-cert-hours", "0"],
            "argument --acme-cert-hours: expected a whole number of at least 1, got '0'",
        ),
        (["--fetch-timeout", "soon"], "argument --fetch-timeout: expected a number, got 'soon'"),
    ],
)
def test_a_bad_flag_is_named(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("TEMPS_LISTEN", "nonsense", "temps: TEMPS_LISTEN: expected HOST:PORT, got 'nonsense'"),
        (
            "TEMPS_BUILD_CONCURRENCY",
            "many",
            "temps: TEMPS_BUILD_CONCURRENCY: expected a whole number, got 'many'",
        ),
        (
            "TEMPS_AUTH_FAILURES",
            "lots",
            "temps: TEMPS_AUTH_FAILURES_ALLOWED or "
            "TEMPS_AUTH_FAILURES: expected a whole number, got 'lots'",
        ),
        (
            "TEMPS_PUBLISH_PORTS",
            "maybe",
            "temps: TEMPS_PUBLISH_PORTS: expected 1 or 0 (true or false), got 'maybe'",
        ),
        (
            "TEMPS_RUNTIME",
            "swarm",  # a rule across fields words itself, as it always has
            "temps: --runtime swarm needs --registry HOST:PORT, the registry every node pulls from",
        ),
    ],
)
def test_a_bad_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, text: str, message: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--home", str(tmp_path)])
    assert exited.value.code == message


def test_published_ports_are_refused_on_swarm(tmp_path: Path) -> None:
    swarm = ["--runtime", "swarm", "--registry", "127.0.0.1:5000", "--publish-ports"]
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--home", str(tmp_path), *swarm])
    assert exited.value.code == (
        "temps: --publish-ports is for --runtime engine: on Swarm each task is published on "
        "its node already"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--build-engine", "tcp://10.0.0.2:2375"],
            "temps: --build-engine needs --registry HOST:PORT, through which its images reach "
            "this engine",
        ),
        (
            ["--build-engine", "tcp://10.0.0.2:2375", "--runtime", "swarm", "--registry", "r:5"],
            "temps: --build-engine is for --runtime engine",
        ),
    ],
)
def test_a_build_engine_needs_a_registry_and_the_engine_runtime(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--home", str(tmp_path), *flags])
    assert exited.value.code == message
