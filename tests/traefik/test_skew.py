"""The routers of releases kept for skew protection: their rules, priorities, middlewares and
services, checked by the validator every route passes, and kept in the route table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import SwitchFailed
from pipeline.settings import Settings
from pipeline.traefik import routes
from pipeline.traefik.documents import (
    MAX_KEPT,
    REDIRECT_PRIORITY,
    RETRY,
    SKEW_PRIORITY,
    Kept,
    Site,
    release_middleware,
    route_document,
    service_document,
)
from pipeline.traefik.validation import validate_kept, validate_route, validate_service

URL, OLD = "http://127.0.0.1:18000", "http://127.0.0.1:18001"
SITE = Site("app", ("app.localhost", "www.example.com"))
V6 = Kept("v6", (OLD,))


def live(cookie: bool = False) -> Any:
    return service_document("app", [URL], "v7", "/", cookie=cookie)


def test_a_kept_release_is_matched_by_header_cookie_or_query_on_the_apps_hosts() -> None:
    http = route_document(SITE, live(), [V6])["http"]
    router = http["routers"]["app_skew_v6"]
    assert router["rule"] == (
        "(Host(`app.localhost`) || Host(`www.example.com`)) && "
        "(Header(`X-Temps-Release`, `v6`) || "
        r"HeaderRegexp(`Cookie`, `(^|;\s*)temps_release=v6(;|$)`) || "
        "Query(`temps_release`, `v6`))"
    )
    assert router["service"] == "app_skew_v6"
    assert router["middlewares"] == [release_middleware("v6"), RETRY]
    assert http["services"]["app_skew_v6"] == {"loadBalancer": {"servers": [{"url": OLD}]}}
    assert http["services"]["app"]["loadBalancer"]["servers"] == [{"url": URL}]
    headers = http["middlewares"]["_temps-release-v6"]["headers"]["customResponseHeaders"]
    assert headers == {"X-Temps-Release": "v6"}
    validate_route("app", {"http": http}, [V6])


def test_a_kept_router_is_above_the_apps_own_and_below_the_redirect_to_https() -> None:
    http = route_document(SITE, live(), [V6])["http"]
    own = http["routers"]["app"]
    assert "priority" not in own  # Traefik's default: the rule's length
    assert len(own["rule"]) < SKEW_PRIORITY < REDIRECT_PRIORITY
    assert http["routers"]["app_skew_v6"]["priority"] == SKEW_PRIORITY


def test_with_https_a_kept_release_is_routed_on_websecure_too() -> None:
    site = Site("app", ("app.localhost",), https=True, hsts_seconds=600)
    routers = route_document(site, live(), [V6])["http"]["routers"]
    secure = routers["app_skew_v6_tls"]
    assert secure["entryPoints"] == ["websecure"] and secure["tls"] == {}
    assert secure["rule"] == routers["app_skew_v6"]["rule"]
    assert "_temps-hsts-600" in secure["middlewares"]


def test_an_app_in_maintenance_routes_no_kept_release() -> None:
    site = Site("app", ("app.localhost",), maintenance=True)
    http = route_document(site, live(), [V6])["http"]
    assert not any("skew" in name for name in [*http["routers"], *http["services"]])


def test_the_release_cookie_is_set_by_the_release_header_middleware() -> None:
    document = live(cookie=True)
    validate_service("app", document)
    [(name, middleware)] = document["http"]["middlewares"].items()
    assert name == "_temps-release-v7-cookie"
    assert middleware["headers"]["customResponseHeaders"] == {
        "X-Temps-Release": "v7",
        "Set-Cookie": "temps_release=v7; Path=/; SameSite=Lax",
    }
    kept = route_document(SITE, document, [Kept("v6", (OLD,), cookie=True)])
    validate_route("app", kept, [Kept("v6", (OLD,), cookie=True)])
    assert "_temps-release-v6-cookie" in kept["http"]["middlewares"]


def test_a_cookie_other_than_the_releases_own_is_refused() -> None:
    document = live(cookie=True)
    [middleware] = document["http"]["middlewares"].values()
    middleware["headers"]["customResponseHeaders"]["Set-Cookie"] = "session=stolen"
    with pytest.raises(SwitchFailed, match="invalid release header"):
        validate_service("app", document)


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        ([Kept("v1 ", (OLD,))], "invalid kept release"),
        ([Kept("v1`) || Host(`x", (OLD,))], "invalid kept release"),
        ([Kept("latest", (OLD,))], "invalid kept release"),
        ([Kept("v1", ())], "invalid servers"),
        ([Kept("v1", ("http://example.com:80",))], "invalid servers"),
        ([Kept("v1", (OLD,)), Kept("v1", (URL,))], "named twice"),
        ([Kept(f"v{n}", (OLD,)) for n in range(MAX_KEPT + 1)], f"at most {MAX_KEPT}"),
    ],
)
def test_kept_releases_that_could_break_the_table_are_refused(
    kept: list[Kept], message: str
) -> None:
    with pytest.raises(SwitchFailed, match=message):
        validate_kept("app", kept)


def test_a_kept_router_with_another_rule_is_refused() -> None:
    http = route_document(SITE, live(), [V6])["http"]
    http["routers"]["app_skew_v6"]["rule"] = "PathPrefix(`/`)"
    with pytest.raises(SwitchFailed, match="invalid rule for kept v6"):
        validate_route("app", {"http": http}, [V6])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return settings


def table(settings: Settings) -> Any:
    return json.loads(routes.table_path(settings).read_bytes())["http"]


def test_the_table_holds_the_kept_releases_until_they_are_let_go(settings: Settings) -> None:
    routes.tidy(settings, {"app": SITE})
    assert not routes.publish_kept(settings, "app", (V6,))  # nothing routed yet
    routes.publish_route(settings, "app", live())
    assert "app_skew_v6" in table(settings)["routers"]
    # A switch moves the app's service; the kept release stays routed.
    routes.publish_route(settings, "app", service_document("app", [URL], "v8", "/"))
    assert table(settings)["services"]["app_skew_v6"]["loadBalancer"]["servers"] == [{"url": OLD}]
    assert routes.publish_kept(settings, "app", ())
    assert not any("skew" in name for name in table(settings)["routers"])


def test_a_restart_publishes_the_kept_releases_it_is_given(settings: Settings) -> None:
    routes.tidy(settings, {"app": SITE})
    routes.publish_route(settings, "app", live())
    routes.tidy(settings, {"app": SITE}, {"app": (V6,), "gone": (V6,)})
    assert routes.kept_of(settings, "app") == (V6,)
    assert "app_skew_v6" in table(settings)["routers"]
    assert routes.kept_of(settings, "gone") == ()
