"""Posting commit statuses: in the background, one at a time, in the order they were asked
for, so that a commit's `pending` never reaches the API after its `success`. One thread serves
every app: a report is a single short request, and an order kept across apps is an order
kept within each.

Each post has a short timeout and a few attempts (tenacity, as notifications do), then is
given up and logged; a refusal (a 4xx other than 429: a wrong token, an unknown repository)
is not tried again. Nothing here can hold up or fail a deploy, and no log line carries the
token: not the headers, not an error's text, not the API's answer.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import structlog

from pipeline.statuses import github, gitlab
from pipeline.statuses.destination import Destination, Provider
from pipeline.statuses.status import CommitStatus
from pipeline.statuses.wire import Post

if TYPE_CHECKING:
    from tenacity import RetryCallState
    from tenacity.wait import wait_base

log = structlog.get_logger()
TIMEOUT_SECONDS = 5.0
ATTEMPTS = 3
ANSWER_CHARS = 200  # of the API's answer to a refusal, in the log


class Unposted(Exception):
    """The API did not take the status this time: no answer, a 5xx or a 429."""


class Refused(Exception):
    """The API refused the status for good: another attempt would be refused the same."""


def request_for(destination: Destination, status: CommitStatus) -> Post:
    if destination.provider == Provider.GITHUB:
        return github.request(destination, status)
    return gitlab.request(destination, status)


@dataclass(frozen=True)
class _Job:
    post: Post
    token: str  # to take out of anything logged
    log: structlog.stdlib.BoundLogger


class StatusSender:
    """`send` queues a status and returns at once; a thread of its own posts them in order."""

    def __init__(
        self,
        timeout: float = TIMEOUT_SECONDS,
        attempts: int = ATTEMPTS,
        backoff: wait_base | None = None,
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._waiting: deque[_Job] = deque()
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def send(self, destination: Destination, status: CommitStatus, app: str, release: str) -> None:
        bound = log.bind(
            app=app,
            release=release,
            commit=status.sha[:12],
            state=str(status.state),
            context=status.context,
            provider=str(destination.provider),
        )
        job = _Job(request_for(destination, status), destination.token, bound)
        with self._changed:
            self._waiting.append(job)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="statuses", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every status queued so far was posted or given up; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
                self._changed.wait_for(lambda: bool(self._waiting))
                job = self._waiting.popleft()
                self._busy = True
            try:
                self._deliver(job)
            except Exception:  # a bug here must not end the thread every later status needs
                job.log.exception("status.crashed")

    def _deliver(self, job: _Job) -> None:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt
        from tenacity.wait import wait_incrementing

        def failed(attempt: RetryCallState) -> None:
            error = attempt.outcome.exception() if attempt.outcome else None
            job.log.warning(
                "status.failed", attempt=attempt.attempt_number, error=_clean(str(error), job)
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.backoff or wait_incrementing(start=1, increment=1),
            retry=retry_if_exception_type(Unposted),
            after=failed,
        )
        try:
            code = retrying(self._post, job)
        except RetryError:
            job.log.warning("status.given_up", attempts=self.attempts)
        except Refused as refused:
            job.log.warning("status.refused", error=_clean(str(refused), job))
        else:
            job.log.info("status.sent", status=code)

    def _post(self, job: _Job) -> int:
        post = job.post
        try:
            answer = httpx.post(
                post.url, json=post.body, headers=post.headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise Unposted(f"{type(exc).__name__}: {exc}") from exc
        if answer.is_success:
            return answer.status_code
        said = answer.text[:ANSWER_CHARS]
        if answer.status_code == 429 or answer.status_code >= 500:
            raise Unposted(f"HTTP {answer.status_code}: {said}")
        raise Refused(f"HTTP {answer.status_code}: {said}")


def _clean(text: str, job: _Job) -> str:
    """`text` without the token, should an error or an answer repeat it."""
    return text.replace(job.token, "[token]") if job.token else text
