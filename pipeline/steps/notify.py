"""Outbound notifications: a signed JSON POST when a release goes live, fails or rolls back,
when a container of a live release had to be started again, and when a scheduled job fails
or runs past its timeout.

tenacity: retries as data (attempts, waits, what to retry on, a hook per failed attempt)
instead of a loop that has to get its sleeps and its last attempt right by hand. It is
imported with the first delivery, not at the daemon's start: an app without a notification
URL never needs it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import httpx
import structlog

from pipeline.app.sealing import Sealer
from pipeline.app.webhooks import sign
from pipeline.release.records import CanaryRecord
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import App, CronRun, Release

if TYPE_CHECKING:
    from tenacity import RetryCallState
    from tenacity.wait import wait_base

log = structlog.get_logger()
ATTEMPTS = 3
SIGNATURE_HEADER = "X-Temps-Signature-256"


def event_for(release: Release) -> str | None:
    canary = canary_of(release)
    if release.state == S.LIVE:
        if release.source == "rollback":
            return "rolled_back"
        promoted = canary is not None and canary.decision == "promoted"
        return "canary_promoted" if promoted else "live"
    if release.state == S.FAILED:
        return "canary_withdrawn" if release.failed_step == S.CANARY else "failed"
    return None


def canary_of(release: Release) -> CanaryRecord | None:
    """The canary's decision and figures, for a release deployed as a canary."""
    return release.traffic.canary if release.traffic is not None else None


def payload(app: App, release: Release, event: str) -> dict[str, object]:
    canary = canary_of(release)
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
        **({"canary": canary.model_dump(mode="json", exclude_none=True)} if canary else {}),
    }


def send_in_background(sealer: Sealer, app: App, release: Release) -> None:
    """Deliver without holding up the app's deploy lane; a few tries, then give up and log."""
    event = event_for(release)
    if event is not None:
        _send(sealer, app, payload(app, release, event), release.number)


def send_restored(
    sealer: Sealer, app: App, release: Release, container: str, process: str, why: str
) -> None:
    """A container of the live release was found down and started again."""
    body = {
        "event": "container_restored",
        "app": app.name,
        "release": release.number,
        "version": f"v{release.number}",
        "process": process,
        "container": container,
        "reason": why,
    }
    _send(sealer, app, {**body, "at": time.time()}, release.number)


def send_cron_failed(sealer: Sealer, app: App, run: CronRun) -> None:
    """A scheduled job failed or ran past its timeout: `cron_failed`, `cron_timed_out`."""
    body = {
        "event": f"cron_{run.state}",
        "app": app.name,
        "job": run.name,
        "release": run.release,
        "version": f"v{run.release}",
        "scheduled_at": run.scheduled_at,
        "source": run.source,
        "exit_code": run.exit_code,
        "detail": run.detail,
        "output_tail": run.output,
    }
    _send(sealer, app, {**body, "at": time.time()}, run.release or 0)


def send_certificate_failed(sealer: Sealer, app: App, host: str, reason: str) -> None:
    """The CA refused to issue or renew the certificate of one of the app's hosts."""
    body = {"event": "certificate_failed", "app": app.name, "host": host, "reason": reason}
    _send(sealer, app, {**body, "at": time.time()}, 0)


def _send(sealer: Sealer, app: App, document: dict[str, object], number: int) -> None:
    if not app.notify_url or not app.notify_secret_sealed:
        return
    body = json.dumps(document).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(sealer.unseal(app.notify_secret_sealed), body),
        "User-Agent": "temps-notify",
    }
    url = app.notify_url
    threading.Thread(
        target=deliver, args=(url, body, headers, app.name, number), daemon=True
    ).start()


def default_backoff() -> wait_base:
    from tenacity.wait import wait_incrementing

    return wait_incrementing(start=1, increment=1)  # 1 s after the first failure, then 2 s


class Undelivered(Exception):
    """The receiver did not take the notification: an HTTP error status or no answer."""


def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    app: str,
    number: int,
    backoff: wait_base | None = None,
) -> bool:
    """POST until the receiver answers 2xx, at most ATTEMPTS times; False when it never did."""
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

    def failed(attempt: RetryCallState) -> None:
        error = attempt.outcome.exception() if attempt.outcome else None
        log.warning(
            "notify.failed",
            app=app,
            release=f"v{number}",
            attempt=attempt.attempt_number,
            error=str(error),
        )

    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=backoff or default_backoff(),
        retry=retry_if_exception_type(Undelivered),
        after=failed,
    )
    try:
        status = retrying(_post, url, body, headers)
    except RetryError:  # every attempt was logged as it failed
        return False
    log.info("notify.sent", app=app, release=f"v{number}", status=status)
    return True


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        raise Undelivered(type(exc).__name__) from exc
    if not response.is_success:
        raise Undelivered(f"HTTP {response.status_code}")
    return response.status_code


def send_backup_failed(sealer: Sealer, app: App, backup: int, reason: str) -> None:
    """A backup of the app's volumes could not be made, or did not verify: it does not count."""
    body = {"event": "backup_failed", "app": app.name, "backup": backup, "reason": reason}
    _send(sealer, app, {**body, "at": time.time()}, 0)
