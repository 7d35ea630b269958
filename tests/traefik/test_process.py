"""The managed Traefik as the real process it starts: its garbage collector settings, and its
own metrics only when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from pipeline.settings import Settings
from tests.support.traefik import managed_traefik


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
