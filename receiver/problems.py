"""The one place errors become HTTP answers: RFC 9457 problem details."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(TempsError, _temps_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
