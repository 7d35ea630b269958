"""Outbound notifications: a signed JSON POST when a release goes live, fails or rolls back."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import structlog

from pipeline.sealing import Sealer
from pipeline.sqlite.models import App, Release
from pipeline.states import ReleaseState as S
from pipeline.webhooks import sign

log = structlog.get_logger()
ATTEMPTS = 3
SIGNATURE_HEADER = "X-Temps-Signature-256"


def event_for(release: Release) -> str | None:
    if release.state == S.LIVE:
        return "rolled_back" if release.source == "rollback" else "live"
    if release.state == S.FAILED:
        return "failed"
    return None


def payload(app: App, release: Release, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "app": app.name,
        "release": release.number,
        "version": f"v{release.number}",
        "state": release.state,
        "source": release.source,
        "commit": release.commit,
        "rollback_of": release.rollback_of,
        "failure_reason": release.failure_reason,
        "failed_step": release.failed_step,
        "log_tail": release.log_tail,
        "at": release.updated_at,
    }


def send_in_background(sealer: Sealer, app: App, release: Release) -> None:
    """Deliver without holding up the app's deploy lane; a few tries, then give up and log."""
    event = event_for(release)
    if not app.notify_url or not app.notify_secret_sealed or event is None:
        return
    body = json.dumps(payload(app, release, event)).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(sealer.unseal(app.notify_secret_sealed), body),
        "User-Agent": "temps-notify",
    }
    url = app.notify_url
    threading.Thread(
        target=_deliver, args=(url, body, headers, app.name, release.number), daemon=True
    ).start()


def _deliver(url: str, body: bytes, headers: dict[str, str], app: str, number: int) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5.0)
            if response.is_success:
                log.info("notify.sent", app=app, release=f"v{number}", status=response.status_code)
                return
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        log.warning("notify.failed", app=app, release=f"v{number}", attempt=attempt, error=problem)
        time.sleep(attempt)
