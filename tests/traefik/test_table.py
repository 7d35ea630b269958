"""The route table spliced from parts rendered per app: the same document a whole render
gives, each shared middleware once, and only the app that changed rendered again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings
from pipeline.traefik import routes
from pipeline.traefik.documents import (
    RETRY,
    RETRY_BALANCED,
    Site,
    route_document,
    service_document,
    split_document,
)
from pipeline.traefik.dynamic import Dynamic, merged
from pipeline.traefik.table import join, render_part

ONE = ["http://127.0.0.1:18001"]
TWO = ["http://127.0.0.1:18001", "http://127.0.0.1:18002"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return settings


def apps() -> dict[str, tuple[Site, Dynamic]]:
    """Sites and services of every kind: plain, custom domains, HTTPS with redirect and
    HSTS, several containers, a canary split, a stopped app."""
    https = Site(
        "shop",
        ("shop.localhost", "www.shop.test"),
        https=True,
        acme=frozenset({"www.shop.test"}),
        redirected=frozenset({"www.shop.test"}),
        hsts_seconds=600,
    )
    hsts = Site("docs", ("docs.localhost",), https=True, hsts_seconds=600)
    return {
        "blog": (
            Site("blog", ("blog.localhost", "blog.test")),
            service_document("blog", ONE, "v3"),
        ),
        "shop": (https, service_document("shop", TWO, "v3", "/health")),
        "docs": (hsts, service_document("docs", ONE, "v1")),
        "beta": (
            Site("beta", ("beta.localhost",)),
            split_document("beta", ONE, TWO, 10, "v4", "/"),
        ),
        "gone": (Site("gone", ("gone.localhost",)), service_document("gone", [], "v2", None, 30)),
    }


def whole(routes_: dict[str, tuple[Site, Dynamic]]) -> dict[str, Any]:
    """The table as one merge of every app's whole route."""
    parts = [route_document(site, service)["http"] for site, service in routes_.values()]
    return {"http": dict(merged(*parts))}


def test_the_spliced_table_is_the_whole_merge_of_every_route() -> None:
    table = join(render_part(route_document(*found)) for _, found in sorted(apps().items()))
    assert json.loads(table) == whole(apps())
    # Compact, as Traefik parses all of it at every switch.
    assert table == json.dumps(json.loads(table), separators=(",", ":")).encode() + b"\n"


def test_a_shared_middleware_is_defined_once_however_many_apps_name_it() -> None:
    table = join(render_part(route_document(*found)) for _, found in sorted(apps().items()))
    for name in (RETRY, RETRY_BALANCED, "_temps-hsts-600", "_temps-release-v3"):
        assert table.count(f'"{name}":{{'.encode()) == 1, name
    middlewares = json.loads(table)["http"]["middlewares"]
    assert sorted(middlewares) == [
        "_temps-hsts-600",
        "_temps-release-v1",
        "_temps-release-v2-retry-after-30",
        "_temps-release-v3",
        "_temps-release-v4",
        RETRY,
        RETRY_BALANCED,
    ]


def test_no_route_is_an_empty_document() -> None:
    # Traefik refuses an empty section, and then freezes every route.
    assert join([]) == b"{}\n"


def test_a_switch_renders_its_own_app_and_joins_the_others(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"app{index:02d}" for index in range(30)]
    for app in names:
        routes.publish_route(settings, app, service_document(app, ONE, "v1"))
    rendered: list[str] = []
    real = routes.render_part

    def counted(route: Dynamic) -> Any:
        rendered.extend(route.get("http", {}).get("services", {}))
        return real(route)

    monkeypatch.setattr(routes, "render_part", counted)
    routes.publish_route(settings, "app07", service_document("app07", TWO, "v2", "/health"))
    assert rendered == ["app07"]
    routes.publish_site(settings, Site("app11", ("app11.localhost", "app11.test")))
    assert rendered == ["app07", "app11"]
    routes.restore_route(settings, "app03", None)
    assert rendered == ["app07", "app11"]

    table = json.loads(routes.table_path(settings).read_bytes())
    expected = {
        app: (Site(app, (f"{app}.localhost",)), service_document(app, ONE, "v1"))
        for app in names
        if app != "app03"
    }
    expected["app07"] = (expected["app07"][0], service_document("app07", TWO, "v2", "/health"))
    expected["app11"] = (Site("app11", ("app11.localhost", "app11.test")), expected["app11"][1])
    assert table == whole(expected)
    # A start renders every app again, from what is on disk.
    rendered.clear()
    sites = {app: site for app, (site, _) in expected.items()}
    routes.tidy(settings, sites)
    assert sorted(rendered) == sorted(expected)
    assert json.loads(routes.table_path(settings).read_bytes()) == table


def test_a_table_not_written_keeps_the_parts_of_the_one_traefik_has(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes.publish_route(settings, "shop", service_document("shop", ONE, "v1"))
    routes.publish_route(settings, "blog", service_document("blog", ONE, "v1"))
    real = routes.write_atomically

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(routes, "write_atomically", full)
    with pytest.raises(OSError):
        routes.publish_route(settings, "shop", service_document("shop", TWO, "v2", "/health"))
    with pytest.raises(OSError):
        routes.publish_site(settings, Site("blog", ("blog.localhost", "blog.test")))
    monkeypatch.setattr(routes, "write_atomically", real)
    routes.publish_route(settings, "docs", service_document("docs", ONE, "v1"))
    http = json.loads(routes.table_path(settings).read_bytes())["http"]
    assert http["services"]["shop"]["loadBalancer"]["servers"] == [{"url": ONE[0]}]
    assert http["routers"]["blog"]["rule"] == "Host(`blog.localhost`)"
    assert sorted(http["routers"]) == ["blog", "docs", "shop"]
