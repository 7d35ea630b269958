"""Property-based run of every operation in the live daemon's OpenAPI schema (schemathesis).

The daemon publishes `/openapi.json`; schemathesis generates requests from it, valid ones
(positive) and ones that break the schema (negative), sends them with the admin token to a
real `temps serve`, and checks each answer: never a 5xx, and never an answer the schema does
not describe (status code, content type, body, headers).

Bounded and loopback only: a fixed number of examples per operation; the app the requests
mostly aim at has one failed release and nothing running, so no request can start a real
deploy, and a destroy aimed at it is never confirmed; notification and upstream URLs are
pointed at a closed loopback port; the admin tokens the run uses cannot be revoked by it.
The daemon allows a huge number of failed authentications, since schemathesis also sends
made-up `Authorization` headers.

Inputs schemathesis rarely produces (integers past 64 bits, lone surrogates, NaN) are sent
by hand at the end.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

from tests.support.apprepo import git_push, make_app_repo
from tests.support.credentials import admin
from tests.support.daemon import MANY_FAILURES, TempsDaemon, running_daemon

pytestmark = pytest.mark.docker

APP = "demo"  # the app most generated requests are aimed at
POSITIVE_EXAMPLES = 120  # per operation
NEGATIVE_EXAMPLES = 80  # per operation that has something to break
REQUEST_TIMEOUT = 60.0
LOOPBACK_SINK = "http://127.0.0.1:9/"  # the discard port: nothing listens there
CONFORMANCE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
GIT_SERVICES = [None, "git-upload-pack", "git-receive-pack"]


# --- the daemon under test -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempsDaemon]:
    home = tmp_path_factory.mktemp("home-schema")
    with running_daemon(home, "test-schema", MANY_FAILURES) as daemon:
        yield daemon


@dataclass
class Target:
    """What the generated requests aim at, and what they must not touch."""

    daemon: TempsDaemon
    token: str  # an admin token made for the run
    protected_token_ids: set[int]


@pytest.fixture(scope="module")
def target(schema_daemon: TempsDaemon, tmp_path_factory: pytest.TempPathFactory) -> Target:
    daemon = schema_daemon
    daemon.create_app(APP)
    # One release that failed at once (no Dockerfile): releases, logs and redeploys have
    # something to find, and nothing runs.
    repo = tmp_path_factory.mktemp("schema-repo") / APP
    make_app_repo(repo, "v1", dockerfile=False)
    code, output = git_push(repo, daemon.git_url(APP))
    assert code != 0, f"a push without a Dockerfile was accepted:\n{output}"
    created = admin(daemon, "POST", "/api/tokens", json={"name": "schema", "scope": "admin"})
    assert created.status_code == 201, created.text
    tokens = admin(daemon, "GET", "/api/tokens").json()
    return Target(daemon, created.json()["token"], {row["id"] for row in tokens})


# --- steering generated cases --------------------------------------------------------------------


@dataclass(frozen=True)
class Steer:
    """Choices drawn beside each case: aim at the real app, which git service, which token."""

    at_app: bool
    service: str | None
    own_auth: bool  # keep the generated Authorization header instead of the admin token


STEER = st.builds(
    Steer,
    at_app=st.booleans(),
    service=st.sampled_from(GIT_SERVICES),
    own_auth=st.sampled_from([False, False, False, True]),
)


def to_loopback(url: Any) -> Any:
    """Keep what the validation sees (scheme, shape) but never let the daemon leave the host."""
    if isinstance(url, str) and re.match(r"https?://", url):
        return LOOPBACK_SINK + re.sub(r"[^A-Za-z0-9._-]", "", url)[:40]
    return url


def steer(case: Case[Any], choice: Steer, target: Target) -> Case[Any]:
    path = case.path_parameters if case.path_parameters is not None else {}
    if "name" in path and choice.at_app:
        path["name"] = APP
    if "service" in path and choice.service:
        path["service"] = choice.service
    if case.query is not None and "service" in case.query and choice.service:
        case.query["service"] = choice.service
    if path.get("token_id") in target.protected_token_ids:
        path["token_id"] = int(path["token_id"]) + 1_000
    if path.get("name") == APP and case.query and case.query.get("confirm") == APP:
        case.query["confirm"] = f"not-{APP}"  # the app the run aims at outlives it
    if isinstance(case.body, dict):
        for key in ("url", "repo_url"):
            if key in case.body:
                case.body[key] = to_loopback(case.body[key])
    return case


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Finding:
    operation: str
    check: str
    status: int
    content_type: str
    body: str  # the start of the first such answer
    curl: str  # a command that sends the first such request again
    count: int = 0

    def line(self) -> str:
        return (
            f"{self.operation}: {self.check}, HTTP {self.status} {self.content_type or '-'} "
            f"x{self.count}; e.g. {self.body[:160]!r}\n    {self.curl[:300]}"
        )


@dataclass
class Campaign:
    cases: int = 0
    per_mode: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: dict[tuple[str, int], Finding] = field(default_factory=dict)
    # Connections the daemon dropped without an answer: as bad as a 5xx.
    dropped: dict[str, Finding] = field(default_factory=dict)
    # Error answers of the API that are not RFC 9457 problem documents.
    not_problems: dict[tuple[str, int, str], Finding] = field(default_factory=dict)
    violations: dict[tuple[str, str, int, str], Finding] = field(default_factory=dict)
    unsatisfiable: list[str] = field(default_factory=list)
    unsendable: int = 0  # cases the HTTP client itself refused to send
    seconds: float = 0.0

    @staticmethod
    def record(bucket: dict[Any, Finding], key: Any, finding: Finding) -> None:
        bucket.setdefault(key, finding).count += 1


def content_type(response: Any) -> str:
    value = response.headers.get("content-type") or [""]
    return str(value[0] if isinstance(value, list) else value)


def is_problem(response: Any) -> bool:
    if content_type(response) != "application/problem+json":
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and {"type", "title", "status", "detail"} <= body.keys()


def run_checks(
    campaign: Campaign, case: Case[Any], response: Any, headers: dict[str, str], base_url: str
) -> None:
    label = case.operation.label
    ctype = content_type(response)
    status = response.status_code

    def finding(check: str) -> Finding:
        body = response.content[:300].decode("utf-8", "replace")
        curl = case.as_curl_command(headers=headers, base_url=base_url)
        return Finding(label, check, status, ctype, body, curl)

    if status >= 400 and case.operation.path.startswith("/api/") and not is_problem(response):
        campaign.record(campaign.not_problems, (label, status, ctype), finding("problem+json"))
    for check in [not_a_server_error, *CONFORMANCE_CHECKS]:
        try:
            case.validate_response(response, checks=[check], headers=headers)
        except (FailureGroup, AssertionError):
            if check is not_a_server_error:
                campaign.record(campaign.server_errors, (label, status), finding(check.__name__))
            else:
                key = (label, check.__name__, status, ctype)
                campaign.record(campaign.violations, key, finding(check.__name__))


def exercise(
    campaign: Campaign,
    target: Target,
    operation: Any,
    mode: GenerationMode,
    examples: int,
) -> None:
    label = operation.label
    strategy = st.tuples(operation.as_strategy(generation_mode=mode), STEER)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(pair=strategy)
    def one(pair: tuple[Case[Any], Steer]) -> None:
        case, choice = steer(pair[0], pair[1], target), pair[1]
        headers = {} if choice.own_auth else {"Authorization": f"Bearer {target.token}"}
        try:
            response = case.call(
                base_url=target.daemon.api_url, headers=headers, timeout=REQUEST_TIMEOUT
            )
        except requests.ConnectionError as exc:
            curl = case.as_curl_command(headers=headers, base_url=target.daemon.api_url)
            campaign.record(
                campaign.dropped, label, Finding(label, "answer", 0, "", str(exc), curl)
            )
            return
        except (requests.RequestException, ValueError):
            campaign.unsendable += 1
            return
        campaign.cases += 1
        campaign.per_mode[mode.value] += 1
        campaign.statuses[(label, response.status_code)] += 1
        run_checks(campaign, case, response, headers, target.daemon.api_url)

    try:
        one()
    except Unsatisfiable:
        # Nothing to break in an operation without parameters or body.
        campaign.unsatisfiable.append(f"{label} ({mode.value})")


@pytest.fixture(scope="module")
def campaign(target: Target) -> Campaign:
    schema = schemathesis.openapi.from_url(f"{target.daemon.api_url}/openapi.json")
    result = Campaign()
    started = time.monotonic()
    for loaded in schema.get_all_operations():
        if isinstance(loaded, Err):
            raise loaded.err()
        operation = loaded.ok()
        exercise(result, target, operation, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
        exercise(result, target, operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
    result.seconds = time.monotonic() - started
    return result


def describe(findings: dict[Any, Finding]) -> str:
    return "\n".join(finding.line() for finding in findings.values())


# --- tests ---------------------------------------------------------------------------------------


def test_every_operation_of_the_schema_was_exercised(campaign: Campaign, target: Target) -> None:
    ran = (
        f"schemathesis: {campaign.cases} cases in {campaign.seconds:.0f} s "
        f"({dict(campaign.per_mode)}), {len(campaign.server_errors)} distinct 5xx, "
        f"{len(campaign.dropped)} dropped connections, "
        f"{len(campaign.not_problems)} kinds of non-problem errors, "
        f"{len(campaign.violations)} distinct schema violations, "
        f"{campaign.unsendable} cases the client could not send"
    )
    schema = httpx.get(f"{target.daemon.api_url}/openapi.json", timeout=10).json()
    operations = {
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
    }
    seen = {label for label, _status in campaign.statuses}
    assert operations <= seen, f"operations never called: {sorted(operations - seen)}; {ran}"
    assert campaign.cases >= len(operations) * POSITIVE_EXAMPLES // 2, ran


def test_no_generated_request_gets_a_server_error(campaign: Campaign) -> None:
    failures: dict[Any, Finding] = {**campaign.server_errors, **campaign.dropped}
    assert not failures, (
        f"{len(campaign.server_errors)} operation/status pairs answered 5xx, "
        f"{len(campaign.dropped)} operations dropped the connection:\n" + describe(failures)
    )


def test_every_api_error_is_a_problem_document(campaign: Campaign) -> None:
    """RFC 9457 from one place: every 4xx and 5xx of /api/ is application/problem+json."""
    assert not campaign.not_problems, (
        f"{len(campaign.not_problems)} kinds of /api/ error answers are not problem "
        "documents:\n" + describe(campaign.not_problems)
    )


def test_every_answer_is_described_by_the_schema(campaign: Campaign) -> None:
    """Status codes, content types, bodies and headers as `/openapi.json` documents them."""
    by_check = Counter(finding.check for finding in campaign.violations.values())
    assert not campaign.violations, (
        f"{len(campaign.violations)} distinct answers the schema does not describe "
        f"({dict(by_check)}):\n" + describe(campaign.violations)
    )


# --- inputs schemathesis rarely produces ---------------------------------------------------------

HUGE = 2**64  # past SQLite's 64-bit INTEGER
LONE_SURROGATE = "\\ud800"  # as JSON text: a string Python decodes but cannot encode to UTF-8


@dataclass(frozen=True)
class Edge:
    method: str
    path: str
    body: str | None = None  # raw JSON text, so NaN and lone surrogates go out as written

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.body or ''}".strip()


EDGES = [
    Edge("DELETE", f"/api/tokens/{HUGE}"),
    Edge("GET", f"/api/apps/{{app}}/releases/{HUGE}"),
    Edge("GET", f"/api/apps/{{app}}/releases/{HUGE}/log"),
    Edge("POST", "/api/apps/{app}/rollback", json.dumps({"release": HUGE})),
    Edge("POST", "/api/apps/{app}/rollback", json.dumps({"release": -HUGE})),
    Edge(
        "POST",
        "/api/apps/{app}/webhook-secret",
        f'{{"secret": "{LONE_SURROGATE}0123456789abcdef"}}',
    ),
    Edge(
        "PUT",
        "/api/apps/{app}/notifications",
        f'{{"url": "{LOOPBACK_SINK}n", "secret": "{LONE_SURROGATE}0123456789abcdef"}}',
    ),
    Edge("PUT", "/api/apps/{app}/source", f'{{"repo_url": "{LOOPBACK_SINK}{LONE_SURROGATE}"}}'),
    Edge(
        "PUT",
        "/api/apps/{app}/source",
        f'{{"repo_url": "{LOOPBACK_SINK}r.git", "token": "{LONE_SURROGATE}"}}',
    ),
    Edge(
        "PUT",
        "/api/apps/{app}/statuses",
        f'{{"provider": "github", "repository": "a/b", "token": "{LONE_SURROGATE}"}}',
    ),
    Edge(
        "PUT",
        "/api/apps/{app}/statuses",
        f'{{"provider": "gitlab", "repository": "a/{LONE_SURROGATE}", "token": "t"}}',
    ),
    Edge("PATCH", "/api/apps/{app}/config", f'{{"env": {{"A": "{LONE_SURROGATE}"}}}}'),
    Edge(
        "PATCH",
        "/api/apps/{app}",
        f'{{"settings": {{"healthcheck": {{"path": "/{LONE_SURROGATE}"}}}}}}',
    ),
    Edge("PATCH", "/api/apps/{app}", '{"settings": {"healthcheck": {"deadline": NaN}}}'),
    Edge("PATCH", "/api/apps/{app}", '{"settings": {"resources": {"cpus": NaN}}}'),
    Edge("POST", "/api/tokens", f'{{"name": "t{LONE_SURROGATE}", "scope": "admin"}}'),
    Edge("POST", "/api/apps", f'{{"name": "{LONE_SURROGATE}"}}'),
]


@pytest.mark.parametrize("edge", EDGES, ids=str)
def test_odd_but_well_formed_input_gets_a_clear_4xx(target: Target, edge: Edge) -> None:
    """Each edge runs on an app of its own; afterwards the app must still read back."""
    daemon = target.daemon
    app = f"edge-{EDGES.index(edge)}"
    daemon.create_app(app)
    response = httpx.request(
        edge.method,
        daemon.api_url + edge.path.format(app=app),
        content=None if edge.body is None else edge.body.encode(),
        headers={"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT,
    )
    reads = {
        path: httpx.get(
            daemon.api_url + path.format(app=app),
            headers={"Authorization": f"Bearer {target.token}"},
            timeout=REQUEST_TIMEOUT,
        ).status_code
        for path in ("/api/apps/{app}", "/api/apps/{app}/config", "/api/tokens")
    }
    problems = []
    if not 400 <= response.status_code < 500:
        problems.append(f"HTTP {response.status_code} {response.text[:200]!r}")
    elif response.headers.get("content-type") != "application/problem+json":
        problems.append(f"{response.headers.get('content-type')} {response.text[:200]!r}")
    broken = {path.format(app=app): status for path, status in reads.items() if status != 200}
    if broken:
        problems.append(f"afterwards, reads fail: {broken}")
    assert not problems, f"{edge}: " + "; ".join(problems)
