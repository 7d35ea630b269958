"""The managed Traefik as the real process it starts: its garbage collector settings, its own
metrics only when asked for, and its access log written as requests are answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from pipeline.settings import Settings
from pipeline.traefik.config import confirm_route
from pipeline.traefik.documents import service_document
from pipeline.traefik.routes import publish_route
from tests.support.traefik import managed_traefik
from tests.support.wait import poll


class Started(NamedTuple):
    environment: dict[str, str]  # as the kernel holds it
    metrics: httpx.Response  # GET /metrics at its API address


def started(home: Path, **fields: object) -> Started:
    """Start the real Traefik for a fresh home; what it was started with."""
    with managed_traefik(home, **fields) as (settings, proxy):
        assert proxy.ready()
        pid = int(settings.traefik_pid_file.read_text())
        pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        metrics = httpx.get(f"{settings.traefik_api.url}/metrics", timeout=5.0)
    return Started(dict(pair.decode().partition("=")[::2] for pair in pairs if pair), metrics)


def test_traefik_starts_with_the_collector_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    defaults = started(tmp_path / "defaults").environment
    assert (defaults["GOGC"], defaults["GOMEMLIMIT"]) == (
        Settings.model_fields["traefik_gogc"].default,
        Settings.model_fields["traefik_memory_limit"].default,
    )
    chosen = started(
        tmp_path / "chosen", traefik_gogc="300", traefik_memory_limit="64MiB"
    ).environment
    assert (chosen["GOGC"], chosen["GOMEMLIMIT"]) == ("300", "64MiB")


def test_the_operators_own_gogc_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGC", "150")
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    environment = started(tmp_path).environment
    assert environment["GOGC"] == "150"
    assert environment["GOMEMLIMIT"] == Settings.model_fields["traefik_memory_limit"].default


def test_traefiks_own_metrics_are_served_only_when_asked_for(tmp_path: Path) -> None:
    assert started(tmp_path / "default").metrics.status_code == 404
    asked = started(tmp_path / "asked", traefik_metrics=True).metrics
    assert asked.status_code == 200
    assert "traefik_config_reloads_total" in asked.text


def logged(settings: Settings) -> list[dict[str, Any]]:
    if not settings.access_log.exists():
        return []
    return [json.loads(line) for line in settings.access_log.read_text().splitlines()]


def paths(settings: Settings, path: str) -> list[str]:
    """The access log's lines for requests to `path`, by their path."""
    return [line["RequestPath"] for line in logged(settings) if line["RequestPath"] == path]


def test_each_request_is_in_the_access_log_as_it_is_answered_and_none_lost_at_a_stop(
    tmp_path: Path, serve: Callable[[bytes], str]
) -> None:
    """The access log is buffered (a writer of its own takes the lines), yet a line is in the
    file soon after its answer, not once the buffer fills; a burst stopped at once is all
    written before Traefik exits."""
    host = "app.localhost"
    with managed_traefik(tmp_path, switch_confirm_timeout=10.0) as (settings, proxy):
        assert proxy.ready()
        url = serve(b"ok")
        publish_route(settings, "app", service_document("app", [url], "v1"))
        confirm_route(settings, "app", [url], "/", "v1")
        web = settings.http.url
        with httpx.Client(headers={"Host": host}, timeout=5.0) as client:
            for n in range(3):
                assert client.get(f"{web}/one/{n}").status_code == 200
                # far fewer lines than the buffer holds: each must be written on its own
                found = poll(
                    lambda n=n: paths(settings, f"/one/{n}"), lambda p: bool(p), timeout=20.0
                )
                assert found == [f"/one/{n}"]
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(lambda n: client.get(f"{web}/burst/{n}").status_code, range(200))
                )
            assert answers == [200] * 200
        proxy.stop()
        burst = [line for line in logged(settings) if line["RequestPath"].startswith("/burst/")]
    expected = sorted(f"/burst/{n}" for n in range(200))
    assert sorted(line["RequestPath"] for line in burst) == expected
    assert {line["DownstreamStatus"] for line in burst} == {200}
    assert {line["RequestHost"] for line in burst} == {host}
