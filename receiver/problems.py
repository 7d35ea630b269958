"""The one place errors become HTTP answers: RFC 9457 problem details."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import (
    Conflict,
    DeployError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RuntimeUnavailable,
    TempsError,
    TooLarge,
    Unauthorized,
)

STATUS: list[tuple[type[TempsError], int, str]] = [
    (NotFound, 404, "Not Found"),
    (Conflict, 409, "Conflict"),
    (TooLarge, 413, "Content Too Large"),
    (InvalidInput, 400, "Bad Request"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (RateLimited, 429, "Too Many Requests"),
    (RuntimeUnavailable, 503, "Service Unavailable"),
    (DeployError, 422, "Deploy Failed"),
    (TempsError, 500, "Internal Server Error"),
]

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
# Every answer an API route may give besides its own: documented once, for every route.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": title, **_PROBLEM}
    for status, title in (
        (400, "Bad request"),
        (401, "Missing or invalid credentials"),
        (403, "Not allowed for this token"),
        (404, "No such app or release"),
        (409, "Conflicts with the current state"),
        (413, "Body over the configured limit"),
        (422, "Invalid request"),
        (429, "Too many failed authentications"),
        (500, "Unexpected error"),
        (503, "Docker engine unavailable"),
    )
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


def status_for(error: TempsError) -> tuple[int, str]:
    for kind, status, title in STATUS:
        if isinstance(error, kind):
            return status, title
    return 500, "Internal Server Error"


async def _temps_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TempsError)
    status, title = status_for(error)
    headers = UNAUTHORIZED_HEADERS if status == 401 else None
    return problem(status, title, str(error), headers)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return problem(422, "Unprocessable Content", details)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    title = HTTPStatus(error.status_code).phrase
    return problem(error.status_code, title, str(error.detail), dict(error.headers or {}))


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("http.unexpected_error", error_type=type(error).__name__)
    return problem(500, "Internal Server Error", "unexpected error; see the daemon log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(TempsError, _temps_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
