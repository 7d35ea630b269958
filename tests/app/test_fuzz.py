"""Property-based fuzzing of the parsers that read what users and the internet send.

`temps.toml` arrives with every push and its keys again through `PATCH /api/apps/<app>`
(any JSON); webhook bodies and signatures arrive from anyone who can reach `/hooks/`. Whatever
comes in, these functions may only refuse it with `InvalidInput` (a 400 or a rejected push)
or `Unauthorized` (a 401); any other exception is a crash. What they accept must also be
something the rest of the pipeline can use: numbers inside the documented ranges, a push
event with a real commit SHA.

A property that fails says how many examples it ran.
"""

from __future__ import annotations

import dataclasses
import json
import math
import string
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.app import config as appconfig
from pipeline.app import webhooks
from pipeline.app.config import AppConfig, load_toml, parse_config
from pipeline.deploy.strategies import Strategy
from pipeline.errors import InvalidInput, Unauthorized

T = TypeVar("T")

EXAMPLES = 2000  # for each "only InvalidInput or Unauthorized" property
CHECK_EXAMPLES = 1000  # for each property about what is accepted
ALLOWED = (InvalidInput, Unauthorized)

# --- running a property and counting it -----------------------------------------------------


def run_property(
    label: str,
    strategy: st.SearchStrategy[T],
    check: Callable[[T], None],
    examples: int,
) -> None:
    """Run `check` on `examples` values drawn from `strategy`; a failure says how many ran (the
    count then includes the shrinking)."""
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def prop(value: T) -> None:
        nonlocal ran
        ran += 1
        check(value)

    try:
        prop()
    except Exception as failed:
        failed.add_note(f"fuzz {label}: failed after {ran} examples")
        raise


def only_allowed_errors(call: Callable[[], T]) -> T | None:
    """The call's result, or None when it refused with an allowed error; anything else raises."""
    try:
        return call()
    except ALLOWED:
        return None


# --- temps.toml: strategies -----------------------------------------------------------------

SECTIONS = {
    "healthcheck": appconfig.HealthCheck,
    "deploy": appconfig.DeploySettings,
    "skew": appconfig.SkewSettings,
    "resources": appconfig.Resources,
    "canary": appconfig.CanarySettings,
}
DEFAULTS: dict[str, Any] = {"port": AppConfig.port} | {
    f"{section}.{f.name}": getattr(kind(), f.name)
    for section, kind in SECTIONS.items()
    for f in dataclasses.fields(kind)
}
KNOWN_KEYS = sorted({name.rpartition(".")[2] for name in DEFAULTS} | set(SECTIONS))
BARE_KEY = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
KEY = st.one_of(st.sampled_from(KNOWN_KEYS), BARE_KEY)
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, math.nan, -0.0, 1e308]
WRONG_TYPES: list[Any] = ["1", True, [1], {"a": 1}]
# For each text setting: two good values first, then bad or odd ones.
TEXTS = {
    "healthcheck.path": ["/", "/health", "health", "", "/a b", "/\u00fc", "//x"],
    "deploy.strategy": [*Strategy, "canary", "", "Blue-Green"],
    "deploy.release_command": ["", "./migrate", "true", "exit 1", "\u00fc"],
    "deploy.handover_signal": ["", "SIGTERM", "TERM", "sigterm", "SIGKILL", "\u00fc"],
}


def weighted(choices: dict[str, st.SearchStrategy[Any]], **weights: int) -> st.SearchStrategy[Any]:
    """One of `choices`, picked in proportion to `weights` (st.one_of picks evenly)."""
    names = st.sampled_from([name for name, weight in weights.items() for _ in range(weight)])

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        return draw(choices[draw(names)])

    return pick()


ONE_IN_TEN = st.sampled_from([False] * 9 + [True])


def rarely(draw: st.DrawFn) -> bool:
    return draw(ONE_IN_TEN)


def field_values(name: str) -> st.SearchStrategy[Any]:
    """Values for one setting: mostly inside its range, some on or past the bounds, a few
    special floats (nan, infinities) and a few of the wrong type."""
    default = DEFAULTS[name]
    if isinstance(default, bool):
        return st.sampled_from([True, False, 0, 1, "true"])
    if isinstance(default, list):  # canary.steps
        return st.sampled_from([[], [10], [10, 50], [50, 10], [0], [100], [5, 5], "10"])
    if isinstance(default, dict):  # [resources.<process>] tables
        return st.sampled_from(
            [{}, {"worker": {"memory_mb": 128}}, {"worker": {"pids": 1}}, {"Bad": {}}, {"w": 1}]
        )
    if isinstance(default, str):
        good, bad = TEXTS[name][:2], TEXTS[name][2:]
        texts = {"good": st.sampled_from(good), "bad": st.sampled_from(bad), "any": st.text()}
        return weighted(texts, good=8, bad=1, any=1)
    low, high = appconfig._RANGES[name]
    top = high if high is not None else 10**6
    edges = [low, top, low - 1, top + 1, 0, -1]
    inside: st.SearchStrategy[Any]
    if isinstance(default, float):
        inside = st.floats(low, top)
    else:
        inside = st.integers(int(low), int(top))
        edges = [int(e) for e in edges] + [2**63, -(2**70)]
    choices = {
        "inside": inside,
        "edge": st.sampled_from(edges),
        "special": st.sampled_from(SPECIAL_FLOATS),
        "wrong": st.sampled_from(WRONG_TYPES),
    }
    return weighted(choices, inside=14, edge=2, special=2, wrong=1)


FIELD_VALUES = {name: field_values(name) for name in DEFAULTS}


@st.composite
def plausible_settings(draw: st.DrawFn) -> dict[str, Any]:
    """temps.toml content as a dict: real keys with values near their ranges, a stray key now
    and then, a section that is not a table now and then."""
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["port"] = draw(FIELD_VALUES["port"])
    for section, kind in SECTIONS.items():
        if rarely(draw):
            data[section] = draw(st.sampled_from(WRONG_TYPES))
            continue
        table: dict[str, Any] = {}
        for f in dataclasses.fields(kind):
            if draw(st.booleans()):
                table[f.name] = draw(FIELD_VALUES[f"{section}.{f.name}"])
        if rarely(draw):
            table[draw(BARE_KEY)] = 1
        keep_if_empty: bool = draw(st.booleans())
        if table or keep_if_empty:
            data[section] = table
    if rarely(draw):
        data[draw(BARE_KEY)] = draw(st.sampled_from(WRONG_TYPES))
    return data


def toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # TOML has no surrogate-pair escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def render_toml(data: dict[str, Any]) -> str:
    """The dict as a temps.toml file: top-level keys first, then one [table] per section."""
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"{k} = {toml_scalar(v)}" for k, v in data.items() if k not in tables]
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_scalar(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # nan and infinities included: Python's json reads NaN and Infinity
    st.text(max_size=10),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(KEY, inner, max_size=2)),
    max_leaves=4,
)
# What `PATCH /api/apps/<app>` may carry as `settings`: any JSON object.
ANY_SETTINGS = st.one_of(plausible_settings(), st.dictionaries(KEY, JSON_VALUE, max_size=4))
# A temps.toml: the plausible ones rendered, TOML syntax errors, and any text at all.
ANY_TOML = st.one_of(
    plausible_settings().map(render_toml),
    plausible_settings().map(render_toml).map(lambda t: t.replace("=", "", 1)),
    st.text(max_size=60),
)


# --- temps.toml: what an accepted config must satisfy ----------------------------------------


def out_of_range(config: AppConfig) -> list[str]:
    """Every value of an accepted config that its documented range does not admit."""
    values: dict[str, Any] = {"port": config.port}
    for section in [*SECTIONS, "preview"]:  # [preview] is not generated, but has ranges
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            values[f"{section}.{key}"] = value
    wrong = []
    for entry in config.cron:  # [[cron]] entries: each one's values against the same ranges
        for key, value in dataclasses.asdict(entry).items():
            if (low_high := appconfig._RANGES.get(f"cron.{key}")) is not None:
                low, high = low_high
                if not (low <= value and (high is None or value <= high)):
                    wrong.append(f"cron[{entry.name}].{key} = {value!r}")
    for name, (low, high) in appconfig._RANGES.items():
        if name.startswith("cron."):
            continue
        value = values[name]
        inside = low <= value and (high is None or value <= high)
        if not inside:  # NaN fails both comparisons, so it lands here
            wrong.append(f"{name} = {value!r}")
    return wrong


def check_accepted_config(config: AppConfig, given: object) -> None:
    wrong = out_of_range(config)
    assert not wrong, f"accepted values outside their documented range: {wrong} from {given!r}"
    assert config.healthcheck.timeout <= config.healthcheck.deadline
    assert config.deploy.strategy in set(Strategy)
    assert config.healthcheck.path.startswith("/")
    assert parse_config(config.to_dict()) == config, "the config does not survive a round trip"


def test_load_toml_refuses_bad_input_only_with_invalid_input() -> None:
    def check(pair: tuple[str, dict[str, Any] | None]) -> None:
        text, overrides = pair
        only_allowed_errors(lambda: load_toml(text, overrides))

    strategy = st.tuples(ANY_TOML, st.one_of(st.none(), ANY_SETTINGS))
    run_property("load_toml(text, API overrides)", strategy, check, EXAMPLES)


def test_parse_config_refuses_bad_input_only_with_invalid_input() -> None:
    def check(data: dict[str, Any]) -> None:
        only_allowed_errors(lambda: parse_config(data))

    run_property("parse_config(any JSON object)", ANY_SETTINGS, check, EXAMPLES)


def test_what_load_toml_accepts_is_inside_the_documented_ranges() -> None:
    def check(data: dict[str, Any]) -> None:
        text = render_toml(data)
        config = only_allowed_errors(lambda: load_toml(text))
        if config is not None:
            check_accepted_config(config, text)

    label = "load_toml accepts only in-range values"
    run_property(label, plausible_settings(), check, CHECK_EXAMPLES)


def test_what_parse_config_accepts_is_inside_the_documented_ranges() -> None:
    def check(data: dict[str, Any]) -> None:
        config = only_allowed_errors(lambda: parse_config(data))
        if config is not None:
            check_accepted_config(config, data)

    label = "parse_config accepts only in-range values"
    run_property(label, plausible_settings(), check, CHECK_EXAMPLES)


def test_nan_is_refused_for_every_number() -> None:
    """What the range properties find first, spelled out: TOML has `nan`, and a range check
    written as `value < low or value > high` lets it through (pipeline/app/config.py, _value).
    A NaN deadline never ends the health gate; a NaN interval crashes it; NaN cpus crash the
    container start."""
    floats = [name for name, default in DEFAULTS.items() if isinstance(default, float)]
    accepted = []
    for name in floats:
        section, key = name.split(".")
        try:
            load_toml(f"[{section}]\n{key} = nan\n")
        except InvalidInput as exc:
            assert name in str(exc), f"{name} = nan refused without naming the key: {exc}"
        else:
            accepted.append(name)
    assert not accepted, f"temps.toml accepts nan for {accepted}"


# --- webhooks: strategies ------------------------------------------------------------------

HEX = "0123456789abcdef"
SHA = st.one_of(
    st.text(HEX, min_size=40, max_size=40),
    st.just("0" * 40),
    st.text(HEX + "ABCDEFxyz", min_size=38, max_size=42),
    st.text(max_size=45),
)
URL = st.one_of(
    st.sampled_from(["https://example.invalid/a.git", "http://127.0.0.1/a.git", "ftp://x", ""]),
    st.text(max_size=40).map(lambda s: "https://" + s),
    st.integers(2030, 2060).map(lambda n: "https://" + "x" * n),
)


def payload_field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, value, JSON_SCALAR)


@st.composite
def push_payloads(draw: st.DrawFn) -> bytes:
    """A GitHub- or GitLab-shaped push body with any field missing, mistyped or odd."""
    data: dict[str, Any] = draw(st.dictionaries(st.text(max_size=5), JSON_SCALAR, max_size=2))
    fields = {
        "ref": payload_field(
            st.one_of(
                st.sampled_from(["refs/heads/main", "refs/tags/v1", "refs/heads/x", ""]),
                st.text(max_size=20),
                st.integers(1020, 1030).map(lambda n: "r" * n),
            )
        ),
        "after": payload_field(SHA),
        "checkout_sha": payload_field(st.one_of(SHA, st.none())),
        "repository": payload_field(st.fixed_dictionaries({"clone_url": payload_field(URL)})),
        "project": payload_field(st.fixed_dictionaries({"git_http_url": payload_field(URL)})),
    }
    for name, strategy in fields.items():
        if draw(st.booleans()):
            data[name] = draw(strategy)
    text = json.dumps(data, ensure_ascii=draw(st.booleans()), allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


BODIES = st.one_of(st.binary(max_size=400), push_payloads())
PARSERS = {"github": webhooks.parse_github_push, "gitlab": webhooks.parse_gitlab_push}


def check_push_event(event: webhooks.PushEvent) -> None:
    assert isinstance(event.ref, str) and 0 < len(event.ref) <= 1024, event
    assert len(event.after) == 40 and set(event.after) <= set(HEX), event
    assert event.clone_url is None or event.clone_url.startswith(("https://", "http://")), event


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_push_payload_parsers_refuse_arbitrary_bytes_only_with_invalid_input(provider: str) -> None:
    parse = PARSERS[provider]

    def check(body: bytes) -> None:
        event = only_allowed_errors(lambda: parse(body))
        if event is not None:
            check_push_event(event)

    label = f"webhooks.parse_{provider}_push(arbitrary bytes and payloads)"
    run_property(label, BODIES, check, EXAMPLES)


REQUEST_PARSERS = {
    "github": webhooks.parse_github_pull_request,
    "gitlab": webhooks.parse_gitlab_merge_request,
}
NUMBERS = st.one_of(st.integers(-5, 10**11), st.booleans(), st.text(max_size=5), st.none())
ACTIONS = st.sampled_from(["opened", "closed", "synchronize", "open", "merge", "update", ""])


@st.composite
def request_payloads(draw: st.DrawFn) -> bytes:
    """Pull (merge) request bodies with each field sometimes missing or of another type."""
    repo = st.one_of(st.none(), st.fixed_dictionaries({"full_name": payload_field(st.text())}))
    side = st.fixed_dictionaries(
        {"sha": payload_field(SHA), "ref": payload_field(st.text()), "repo": repo}
    )
    data: dict[str, object] = {}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "action": payload_field(ACTIONS),
        "number": NUMBERS,
        "pull_request": payload_field(st.fixed_dictionaries({"head": side, "base": side})),
        "object_attributes": payload_field(
            st.fixed_dictionaries(
                {
                    "action": payload_field(ACTIONS),
                    "iid": NUMBERS,
                    "last_commit": payload_field(st.fixed_dictionaries({"id": payload_field(SHA)})),
                    "source_project_id": NUMBERS,
                    "target_project_id": NUMBERS,
                }
            )
        ),
    }
    for name, strategy in fields.items():
        if draw(st.booleans()):
            data[name] = draw(strategy)
    return json.dumps(data).encode()


@pytest.mark.parametrize("provider", sorted(REQUEST_PARSERS))
def test_request_payload_parsers_refuse_arbitrary_bytes_only_with_invalid_input(
    provider: str,
) -> None:
    parse = REQUEST_PARSERS[provider]

    def check(body: bytes) -> None:
        event = only_allowed_errors(lambda: parse(body))
        if event is None:
            return
        assert event.number > 0 and event.ref.endswith(f"/{event.number}/head"), event
        if event.intent == webhooks.Intent.DEPLOY:
            assert event.head is not None and len(event.head) == 40, event
        else:
            assert event.head is None, event

    label = f"webhooks.parse_{provider} requests(arbitrary bytes and payloads)"
    run_property(label, st.one_of(st.binary(max_size=400), request_payloads()), check, EXAMPLES)


# Header values reach the app as latin-1 decoded text; anything else may come from a test.
HEADER_TEXT = st.one_of(
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.text(max_size=80),
    st.text(HEX, min_size=64, max_size=64).map(lambda h: "sha256=" + h),
)
SECRET = st.text(min_size=1, max_size=64)


def test_verify_github_refuses_arbitrary_signatures_only_with_unauthorized() -> None:
    def check(args: tuple[str, bytes, str | None]) -> None:
        secret, body, signature = args
        try:
            webhooks.verify_github(secret, body, signature)
        except Unauthorized:
            return
        # It accepted: then the signature must be the right one.
        assert signature is not None
        assert signature.strip() == webhooks.sign(secret, body), (secret, body, signature)

    strategy = st.tuples(SECRET, st.binary(max_size=400), st.one_of(st.none(), HEADER_TEXT))
    label = "webhooks.verify_github(arbitrary secret, body, signature)"
    run_property(label, strategy, check, EXAMPLES)


def test_verify_github_accepts_the_right_signature_and_no_other() -> None:
    def check(args: tuple[str, bytes, int]) -> None:
        secret, body, flip = args
        right = webhooks.sign(secret, body)
        webhooks.verify_github(secret, body, right)
        position = len("sha256=") + flip % 64
        digit = HEX[(HEX.index(right[position]) + 1) % 16]
        wrong = right[:position] + digit + right[position + 1 :]
        with pytest.raises(Unauthorized):
            webhooks.verify_github(secret, body, wrong)

    strategy = st.tuples(SECRET, st.binary(max_size=400), st.integers(0, 63))
    label = "webhooks.verify_github(right and one-digit-off signatures)"
    run_property(label, strategy, check, CHECK_EXAMPLES)


def test_verify_gitlab_refuses_arbitrary_tokens_only_with_unauthorized() -> None:
    def check(args: tuple[str, str | None]) -> None:
        secret, token = args
        digest = webhooks.hash_secret(secret)
        try:
            webhooks.verify_gitlab(digest, token)
        except Unauthorized:
            return
        assert token == secret

    strategy = st.tuples(SECRET, st.one_of(st.none(), HEADER_TEXT, SECRET))
    run_property("webhooks.verify_gitlab(arbitrary token)", strategy, check, CHECK_EXAMPLES)
