"""The one error table: every face of the daemon answers an error with the same status."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from pipeline import errors
from receiver.auth import GIT_HINT
from receiver.problems import ERROR_RESPONSES, git_refusal, status_for


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (errors.NotFound("x"), 404, "Not Found"),
        (errors.Conflict("x"), 409, "Conflict"),
        (errors.TooLarge("x"), 413, "Content Too Large"),
        (errors.UnsupportedMediaType("x"), 415, "Unsupported Media Type"),
        (errors.InvalidInput("x"), 400, "Bad Request"),
        (errors.Unauthorized("x"), 401, "Unauthorized"),
        (errors.Forbidden("x"), 403, "Forbidden"),
        (errors.RateLimited("x"), 429, "Too Many Requests"),
        (errors.RuntimeUnavailable("x"), 503, "Service Unavailable"),
        (errors.RecordsBusy(), 503, "Service Unavailable"),
        (errors.DiskFull("/srv/temps", "3.1 MB"), 507, "Insufficient Storage"),
        (
            errors.SpaceShort("the disk holding /srv/temps has 3.1 MB free", 512),
            507,
            "Insufficient Storage",
        ),
        (errors.BuildFailed("x"), 422, "Deploy Failed"),
        (errors.HealthCheckFailed("x"), 422, "Deploy Failed"),
        (errors.MigrationFailed("x"), 500, "Internal Server Error"),
        (errors.TempsError("x"), 500, "Internal Server Error"),
        (RequestValidationError([]), 422, "Unprocessable Content"),
        (RuntimeError("x"), 500, "Internal Server Error"),
    ],
)
def test_each_error_has_one_status_and_title(error: Exception, status: int, title: str) -> None:
    assert status_for(error) == (status, title)


def test_the_schema_documents_each_status_an_api_route_may_answer_once() -> None:
    assert sorted(ERROR_RESPONSES) == [400, 401, 403, 404, 409, 413, 422, 429, 500, 503, 507]
    assert ERROR_RESPONSES[422]["description"] == "Invalid request"


def test_git_is_refused_in_plain_text_with_the_status_of_the_table() -> None:
    answer = git_refusal(errors.Forbidden("this token may not act on app 'a'"))
    assert (answer.status_code, answer.body) == (403, b"temps: this token may not act on app 'a'\n")
    assert answer.media_type == "text/plain"
    wrong_type = git_refusal(errors.UnsupportedMediaType("invalid Content-Type for a git request"))
    assert wrong_type.status_code == 415


def test_git_is_asked_for_basic_credentials_with_the_hint() -> None:
    answer = git_refusal(errors.Unauthorized("missing credentials"))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="temps"'
    assert answer.body.decode() == f"missing credentials. {GIT_HINT}"
