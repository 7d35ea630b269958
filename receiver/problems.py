"""The one place errors become HTTP answers: RFC 9457 problem details."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import (
    BackupFailed,
    Conflict,
    DeployError,
    DiskFull,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RecordsBusy,
    RunFailed,
    RunLimitReached,
    RuntimeUnavailable,
    SpaceShort,
    TailLimitReached,
    TempsError,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from receiver.auth import GIT_HINT


@dataclass(frozen=True)
class Answer:
    status: int
    title: str  # the problem's title
    meaning: str | None = None  # what the OpenAPI schema says this status means
    retry_after: int | None = None  # seconds, when trying again later may well work


# The one table: the first class an error is an instance of decides how every face of the
# daemon answers it (the API's problems, git's plain text, the dashboard's pages).
ANSWERS: tuple[tuple[type[Exception], Answer], ...] = (
    (NotFound, Answer(404, "Not Found", "No such app or release")),
    (Conflict, Answer(409, "Conflict", "Conflicts with the current state")),
    (TooLarge, Answer(413, "Content Too Large", "Body over the configured limit")),
    (UnsupportedMediaType, Answer(415, "Unsupported Media Type")),
    (InvalidInput, Answer(400, "Bad Request", "Bad request")),
    (Unauthorized, Answer(401, "Unauthorized", "Missing or invalid credentials")),
    (Forbidden, Answer(403, "Forbidden", "Not allowed for this token")),
    (
        RateLimited,
        Answer(
            429,
            "Too Many Requests",
            "Too many failed authentications, or the app's one-off runs at their limit",
        ),
    ),
    (RunLimitReached, Answer(429, "Too Many Requests")),
    (TailLimitReached, Answer(429, "Too Many Requests")),
    # The engine, behind the daemon, refused the container: only the attach answers it.
    (RunFailed, Answer(502, "Bad Gateway")),
    (RecordsBusy, Answer(503, "Service Unavailable", retry_after=RecordsBusy.RETRY_AFTER_SECONDS)),
    (
        RuntimeUnavailable,
        Answer(503, "Service Unavailable", "Docker engine unavailable, or the records busy"),
    ),
    # 507 rather than 503: trying again does not help until someone frees space, and a
    # client that retries on 503 would only keep the disk busy.
    (DiskFull, Answer(507, "Insufficient Storage", "The disk holding the home is full")),
    (SpaceShort, Answer(507, "Insufficient Storage")),
    (DeployError, Answer(422, "Deploy Failed")),
    (BackupFailed, Answer(422, "Backup Failed")),
    (RequestValidationError, Answer(422, "Unprocessable Content", "Invalid request")),
    (WebSocketRequestValidationError, Answer(422, "Unprocessable Content")),
    (Exception, Answer(500, "Internal Server Error", "Unexpected error")),
)

log = structlog.get_logger()

_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM = {"content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}}}
# What a route's `responses` documents: status -> description, and content or model.
Responses = dict[int | str, dict[str, object]]
# Every answer an API route may give besides its own: documented once, for every route.
ERROR_RESPONSES: Responses = {
    answer.status: {"description": answer.meaning, **_PROBLEM}
    for answer in sorted((answer for _, answer in ANSWERS), key=lambda a: a.status)
    if answer.meaning is not None
}

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="temps"'}


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def answer_for(error: Exception) -> Answer:
    return next(answer for kind, answer in ANSWERS if isinstance(error, kind))


def status_for(error: Exception) -> tuple[int, str]:
    answer = answer_for(error)
    return answer.status, answer.title


def git_refusal(error: TempsError) -> PlainTextResponse:
    """A refusal as git shows it to the pusher: a line of text. A 401 asks for Basic
    credentials, since git sends them only after one, and says which to use."""
    status = answer_for(error).status
    if status == 401:
        headers = {"WWW-Authenticate": 'Basic realm="temps"'}
        return PlainTextResponse(f"{error}. {GIT_HINT}", status_code=status, headers=headers)
    return PlainTextResponse(f"temps: {error}\n", status_code=status)


async def _temps_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TempsError)
    answer = answer_for(error)
    headers = UNAUTHORIZED_HEADERS if answer.status == 401 else None
    if answer.retry_after is not None:
        headers = {"Retry-After": str(answer.retry_after)}
    return problem(answer.status, answer.title, str(error), headers)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    # A WebSocket's parameters refused are answered before it is accepted, like a request's.
    assert isinstance(error, RequestValidationError | WebSocketRequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    answer = answer_for(error)
    return problem(answer.status, answer.title, details)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    title = HTTPStatus(error.status_code).phrase
    return problem(error.status_code, title, str(error.detail), dict(error.headers or {}))


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("http.unexpected_error", error_type=type(error).__name__)
    answer = answer_for(error)
    return problem(answer.status, answer.title, "unexpected error; see the daemon log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(TempsError, _temps_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(WebSocketRequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
