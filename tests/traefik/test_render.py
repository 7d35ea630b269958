"""Routes for Traefik's file provider: rendered, validated, kept per app, published as one table
atomically, restored, cleaned up at start-up; and runs against the real Traefik binary."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.errors import SwitchFailed
from pipeline.settings import Address, Settings
from pipeline.traefik import publish
from pipeline.traefik.config import TLS_FILE, confirm_route, static_config
from pipeline.traefik.documents import (
    HTTPS_REDIRECT,
    MAINTENANCE_SERVICE,
    PAGES_SERVICE,
    RELEASE_HEADER,
    RETRY,
    RETRY_BALANCED,
    Site,
    current_service,
    release_middleware,
    render,
    route_document,
    router_document,
    service_document,
    split_document,
)
from pipeline.traefik.routes import (
    TABLE_FILE,
    publish_route,
    publish_site,
    read_route,
    restore_route,
    route_path,
    site_of,
    table_path,
    tidy,
)
from pipeline.traefik.validation import validate_route, validate_service, validate_site
from tests.support.traefik import managed_traefik

URL = "http://127.0.0.1:18000"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    return settings


def service(app: str = "app", url: str = URL) -> dict[str, Any]:
    return service_document(app, [url] if url else [], "v7")


def doc(app: str = "app", hosts: list[str] | None = None, url: str = URL) -> dict[str, Any]:
    """The whole route Traefik gets for the app: its site's router over its service."""
    return route_document(Site(app, tuple(hosts or [f"{app}.localhost"])), service(app, url))


def earlier_route(app: str, url: str = URL, retry_after: int | None = None) -> dict[str, Any]:
    """An app's route file as temps wrote it before issue 29: the release header and a retry
    of the app's own, the Host header's default written out."""
    headers = {RELEASE_HEADER: "v7"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return {
        "http": {
            "middlewares": {
                f"{app}-release": {"headers": {"customResponseHeaders": headers}},
                f"{app}-retry": {"retry": {"attempts": 2, "initialInterval": "20ms"}},
            },
            "routers": {
                app: {
                    "rule": f"Host(`{app}.localhost`)",
                    "service": app,
                    "entryPoints": ["web"],
                    "middlewares": [f"{app}-release", f"{app}-retry"],
                }
            },
            "services": {
                app: {"loadBalancer": {"servers": [{"url": url}], "passHostHeader": True}}
            },
        }
    }


def default_sites(*apps: str) -> dict[str, Site]:
    return {app: Site(app, (f"{app}.localhost",)) for app in apps}


# --- rendering ----------------------------------------------------------------------------


def test_the_rendered_route_is_json_with_router_service_and_release_header() -> None:
    parsed = json.loads(render(doc()))
    http = parsed["http"]
    router = http["routers"]["app"]
    assert router["rule"] == "Host(`app.localhost`)"
    assert router["service"] == "app"
    assert router["entryPoints"] == ["web"]
    assert router["middlewares"] == ["_temps-release-v7", RETRY]
    assert http["services"]["app"]["loadBalancer"]["servers"] == [{"url": URL}]
    headers = http["middlewares"]["_temps-release-v7"]["headers"]["customResponseHeaders"]
    assert headers == {RELEASE_HEADER: "v7"}
    assert RELEASE_HEADER == "X-Temps-Release"
    assert http["middlewares"][RETRY] == {"retry": {"attempts": 2, "initialInterval": "20ms"}}
    assert sorted(http["middlewares"]) == ["_temps-release-v7", RETRY]


def test_apps_at_the_same_release_share_its_header_and_a_stopped_app_has_its_own() -> None:
    assert release_middleware("v3") == "_temps-release-v3"
    assert release_middleware("v3", 30) == "_temps-release-v3-retry-after-30"
    stopped = service_document("blog", [], "v3", retry_after=30)["http"]["middlewares"]
    headers = stopped["_temps-release-v3-retry-after-30"]["headers"]["customResponseHeaders"]
    assert headers == {RELEASE_HEADER: "v3", "Retry-After": "30"}
    shop = route_document(Site("shop", ("shop.localhost",)), service("shop"))["http"]
    blog = route_document(Site("blog", ("blog.localhost",)), service("blog"))["http"]
    assert shop["routers"]["shop"]["middlewares"] == blog["routers"]["blog"]["middlewares"]
    assert shop["middlewares"] == blog["middlewares"]


def test_several_hosts_become_one_rule() -> None:
    rule = doc(hosts=["app.localhost", "www.example.com"])["http"]["routers"]["app"]["rule"]
    assert rule == "Host(`app.localhost`) || Host(`www.example.com`)"


def test_render_is_stable_and_ends_with_a_newline() -> None:
    content = render(doc())
    assert content == render(doc())
    assert content.endswith(b"\n")
    # JSON is YAML as long as no tab indents it.
    assert b"\t" not in content


# --- validation ---------------------------------------------------------------------------


def test_a_well_formed_route_is_accepted() -> None:
    validate_route("app", doc(hosts=["app.localhost", "shop.example.com"]))
    validate_route("a-1", doc("a-1"))


@pytest.mark.parametrize("name", ["feature-x--myapp", "1-fix--myapp", "a" * 54 + "--myapp"])
def test_a_preview_name_is_accepted(name: str) -> None:
    validate_route(name, doc(name, hosts=[f"{name}.localhost"]))


@pytest.mark.parametrize("name", ["App", "1app-", "-app", "app_x", "a" * 64, "", "app.yml"])
def test_a_bad_app_name_is_refused(name: str) -> None:
    with pytest.raises(SwitchFailed, match="invalid app name"):
        validate_route(name, doc(name, hosts=["x.localhost"]))


@pytest.mark.parametrize(
    "host",
    ["App.localhost", "app..localhost", "-app.localhost", "app.localhost-", "a b", "a_b.c", ""],
)
def test_a_bad_host_is_refused(host: str) -> None:
    with pytest.raises(SwitchFailed, match="invalid host name"):
        validate_route("app", doc(hosts=[host]))


def test_a_bad_host_among_good_ones_is_refused() -> None:
    with pytest.raises(SwitchFailed, match="invalid host name"):
        validate_route("app", doc(hosts=["app.localhost", "evil host"]))


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0:8000",
        "http://255.255.255.255:8000",
        "http://10.0.0.256:8000",
        "http://localhost:8000",
        "http://node-1.internal:8000",
        "https://127.0.0.1:8000",
        "http://127.0.0.1",
        "http://127.0.0.1:8000/path",
        "http://127.0.0.1:8000@evil.example",
    ],
)
def test_a_server_that_is_not_an_address_and_port_is_refused(url: str) -> None:
    with pytest.raises(SwitchFailed, match="invalid server URL"):
        validate_route("app", doc(url=url))


def test_a_swarm_nodes_address_is_a_server() -> None:
    validate_route("app", doc(url="http://10.231.0.11:30001"))


def test_an_extra_router_is_refused() -> None:
    document = doc()
    document["http"]["routers"]["other"] = dict(document["http"]["routers"]["app"])
    with pytest.raises(SwitchFailed, match="exactly the app's router and service"):
        validate_route("app", document)


def test_an_extra_service_is_refused() -> None:
    document = doc()
    document["http"]["services"]["other"] = document["http"]["services"]["app"]
    with pytest.raises(SwitchFailed, match="holds services of its own"):
        validate_route("app", document)


def test_a_route_named_for_another_app_is_refused() -> None:
    with pytest.raises(SwitchFailed, match="exactly the app's router and service"):
        validate_route("app", doc("shop"))


# --- publishing: one table of every app's route ---------------------------------------------


def table(settings: Settings) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(table_path(settings).read_bytes())
    return parsed


def test_publish_keeps_the_app_route_and_puts_it_in_the_table(settings: Settings) -> None:
    publish_route(settings, "app", service())
    assert route_path(settings, "app") == settings.routes_dir / "app.json"
    assert read_route(settings, "app") == render(service())
    http = table(settings)["http"]
    assert http == doc()["http"]
    assert sorted(p.name for p in settings.dynamic_dir.iterdir()) == [TABLE_FILE]


def test_the_table_holds_every_app_and_a_switch_changes_only_its_own(settings: Settings) -> None:
    publish_route(settings, "shop", service("shop", url="http://127.0.0.1:18001"))
    publish_route(settings, "blog", service("blog", url="http://127.0.0.1:18002"))
    publish_route(settings, "shop", service("shop", url="http://127.0.0.1:18003"))
    publish_route(settings, "docs", service_document("docs", [], "v2", retry_after=30))
    http = table(settings)["http"]
    assert sorted(http["routers"]) == ["blog", "docs", "shop"]
    # Defined once, whichever apps name them.
    assert sorted(http["middlewares"]) == [
        "_temps-release-v2-retry-after-30",
        "_temps-release-v7",
        RETRY,
    ]
    assert http["routers"]["docs"]["middlewares"] == ["_temps-release-v2-retry-after-30", RETRY]
    servers = {app: http["services"][app]["loadBalancer"]["servers"] for app in ("shop", "blog")}
    assert servers == {
        "shop": [{"url": "http://127.0.0.1:18003"}],
        "blog": [{"url": "http://127.0.0.1:18002"}],
    }


def test_concurrent_switches_of_different_apps_all_land(settings: Settings) -> None:
    apps = [f"app{i}" for i in range(20)]

    def switch(app: str) -> None:
        for port in range(18000, 18010):
            publish_route(settings, app, service(app, url=f"http://127.0.0.1:{port}"))

    threads = [threading.Thread(target=switch, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    services = table(settings)["http"]["services"]
    assert sorted(services) == sorted(apps)
    for app in apps:
        assert services[app]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:18009"}]
    assert list(settings.staging_dir.iterdir()) == []


def test_publish_moves_a_temp_file_from_staging_and_leaves_none_behind(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves: list[tuple[Path, Path, int]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        moves.append((Path(src), Path(dst), os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    publish_route(settings, "app", service())

    assert [dst for _, dst, _ in moves] == [table_path(settings), route_path(settings, "app")]
    for src, dst, inode in moves:
        assert src.parent == settings.staging_dir
        # What Traefik sees is the file written in staging, moved whole, not copied.
        assert dst.stat().st_ino == inode
    assert list(settings.staging_dir.iterdir()) == []


def test_publish_replaces_the_table_instead_of_rewriting_it(settings: Settings) -> None:
    publish_route(settings, "app", service(url="http://127.0.0.1:18001"))
    path = table_path(settings)
    old_inode = path.stat().st_ino
    with open(path, "rb") as reader:
        publish_route(settings, "app", service(url="http://127.0.0.1:18002"))
        # A reader of the old table still sees it whole: it was never truncated.
        assert b"18001" in reader.read()
    assert path.stat().st_ino != old_inode
    assert b"18002" in path.read_bytes()


def test_an_invalid_route_is_not_published(settings: Settings) -> None:
    publish_route(settings, "app", service())
    before = table_path(settings).read_bytes(), read_route(settings, "app")
    with pytest.raises(SwitchFailed):
        publish_route(settings, "app", service(url="http://example.com:80"))
    assert (table_path(settings).read_bytes(), read_route(settings, "app")) == before
    assert list(settings.staging_dir.iterdir()) == []


def test_read_route_is_none_when_the_app_has_no_route(settings: Settings) -> None:
    assert read_route(settings, "app") is None


def test_restore_puts_the_previous_bytes_back(settings: Settings) -> None:
    publish_route(settings, "app", service(url="http://127.0.0.1:18001"))
    previous = read_route(settings, "app")
    publish_route(settings, "app", service(url="http://127.0.0.1:18002"))
    restore_route(settings, "app", previous)
    assert read_route(settings, "app") == previous
    assert b"18001" in table_path(settings).read_bytes()
    assert b"18002" not in table_path(settings).read_bytes()
    assert list(settings.staging_dir.iterdir()) == []


def test_restore_with_none_deletes_the_route(settings: Settings) -> None:
    publish_route(settings, "app", service())
    publish_route(settings, "other", service("other"))
    restore_route(settings, "app", None)
    assert not route_path(settings, "app").exists()
    restore_route(settings, "app", None)  # already gone: nothing to do
    assert sorted(table(settings)["http"]["routers"]) == ["other"]


def test_tidy_keeps_known_apps_and_removes_stray_files(settings: Settings) -> None:
    publish_route(settings, "shop", service("shop"))
    publish_route(settings, "gone", service("gone"))
    dynamic = settings.dynamic_dir
    for name in (TLS_FILE, "shop.yml.tmp", "notes.txt", "blog.yml", "old.yml"):
        (dynamic / name).write_text("{}\n")
    (settings.routes_dir / "junk.txt").write_text("x")
    removed = tidy(settings, default_sites("shop", "idle"))
    assert sorted(removed) == sorted(
        ["routes/gone.json", "routes/junk.txt", "shop.yml.tmp", "notes.txt", "blog.yml", "old.yml"]
    )
    assert sorted(p.name for p in dynamic.iterdir()) == sorted([TLS_FILE, TABLE_FILE])
    assert sorted(table(settings)["http"]["routers"]) == ["shop"]


def test_tidy_takes_over_route_files_of_the_one_file_per_app_layout(settings: Settings) -> None:
    (settings.dynamic_dir / "shop.yml").write_bytes(render(earlier_route("shop")))
    tidy(settings, default_sites("shop"))
    assert read_route(settings, "shop") == render(service("shop"))
    assert table(settings)["http"] == doc("shop")["http"]
    assert sorted(p.name for p in settings.dynamic_dir.iterdir()) == [TABLE_FILE]


def test_route_files_of_the_per_app_middlewares_layout_are_written_as_this_one_writes_them(
    settings: Settings,
) -> None:
    route_path(settings, "shop").write_bytes(render(earlier_route("shop")))
    route_path(settings, "docs").write_bytes(render(earlier_route("docs", retry_after=30)))
    tidy(settings, default_sites("shop", "docs"))
    # As a switch would write them now: reconciliation finds them routed as they should be.
    assert read_route(settings, "shop") == render(service("shop"))
    stopped = service_document("docs", [URL], "v7", retry_after=30)
    assert read_route(settings, "docs") == render(stopped)
    assert publish.is_routed(settings, "shop", [URL], "v7", "/")
    assert publish.is_routed(settings, "docs", [URL], "v7", "/", retry_after=30)
    assert sorted(table(settings)["http"]["middlewares"]) == [
        "_temps-release-v7",
        "_temps-release-v7-retry-after-30",
        RETRY,
    ]


def test_a_current_service_document_is_left_as_it_is() -> None:
    document = split_document("app", [URL], ["http://127.0.0.1:18001"] * 2, 10, "v7", "/")
    assert current_service("app", json.loads(render(document))) == (document, False)


def test_an_unreadable_route_file_is_left_out_of_the_table(settings: Settings) -> None:
    publish_route(settings, "shop", service("shop"))
    (settings.routes_dir / "blog.json").write_text("{not json")
    tidy(settings, default_sites("shop", "blog"))
    assert sorted(table(settings)["http"]["routers"]) == ["shop"]
    assert read_route(settings, "blog") is None


def test_with_no_apps_the_table_is_empty(settings: Settings) -> None:
    (settings.dynamic_dir / TLS_FILE).write_text("{}\n")
    (settings.dynamic_dir / "shop.yml").write_text("{}\n")
    assert tidy(settings, {}) == ["shop.yml"]
    assert sorted(p.name for p in settings.dynamic_dir.iterdir()) == sorted([TLS_FILE, TABLE_FILE])
    # Traefik refuses empty sections (and would then freeze every route): none at all.
    assert table(settings) == {}


def test_several_servers_get_traefiks_health_check_and_one_gets_none() -> None:
    urls = ["http://127.0.0.1:18001", "http://127.0.0.1:18002"]
    balanced = service_document("app", urls, "v1", "/health")
    check = balanced["http"]["services"]["app"]["loadBalancer"]["healthCheck"]
    assert check["path"] == "/health"
    alone = service_document("app", urls[:1], "v1", "/health")
    assert "healthCheck" not in alone["http"]["services"]["app"]["loadBalancer"]
    site = Site("app", ("app.localhost",))
    # The retry of several servers also sends a GET answered 502 to another one.
    route = route_document(site, balanced)["http"]
    assert route["routers"]["app"]["middlewares"] == ["_temps-release-v1", RETRY_BALANCED]
    retry = route["middlewares"][RETRY_BALANCED]["retry"]
    assert (retry["attempts"], retry.get("status")) == (4, ["502"])
    route = route_document(site, alone)["http"]
    assert route["routers"]["app"]["middlewares"] == ["_temps-release-v1", RETRY]
    assert "status" not in route["middlewares"][RETRY]["retry"]
    # A canary's containers balanced by Traefik's check: the same retry.
    split = split_document("app", urls[:1], urls, 10, "v2", "/health")
    routers = route_document(site, split)["http"]["routers"]
    assert routers["app"]["middlewares"] == ["_temps-release-v2", RETRY_BALANCED]


def test_a_release_header_must_be_named_after_what_it_sends() -> None:
    # Every app at v7 names `_temps-release-v7`: one that sent anything else would lie for all.
    document = service()
    middlewares = document["http"]["middlewares"]
    middlewares["_temps-release-v8"] = middlewares.pop("_temps-release-v7")
    with pytest.raises(SwitchFailed, match="misnamed"):
        validate_service("app", document)
    with pytest.raises(SwitchFailed, match="invalid release header"):
        validate_service("app", service_document("app", [URL], "v 7"))
    extra = service()
    extra["http"]["middlewares"][RETRY] = {"retry": {"attempts": 2, "initialInterval": "20ms"}}
    with pytest.raises(SwitchFailed, match="one middleware"):
        validate_service("app", extra)


def test_a_service_document_with_a_router_is_refused() -> None:
    document = service()
    document["http"]["routers"] = doc()["http"]["routers"]
    with pytest.raises(SwitchFailed, match="only the app's service"):
        validate_service("app", document)


# --- sites: the hosts an app is served at ---------------------------------------------------


def rule_of(settings: Settings, app: str) -> str:
    rule: str = table(settings)["http"]["routers"][app]["rule"]
    return rule


def test_an_app_without_a_site_is_served_at_its_default_host(settings: Settings) -> None:
    publish_route(settings, "app", service())
    assert site_of(settings, "app") == Site("app", ("app.localhost",))
    assert rule_of(settings, "app") == "Host(`app.localhost`)"


def test_a_new_site_changes_the_hosts_and_leaves_the_servers(settings: Settings) -> None:
    publish_route(settings, "app", service(url="http://127.0.0.1:18001"))
    before = table(settings)["http"]["services"]
    assert publish_site(settings, Site("app", ("app.localhost", "www.example.com")))
    assert rule_of(settings, "app") == "Host(`app.localhost`) || Host(`www.example.com`)"
    assert table(settings)["http"]["services"] == before
    # The next switch keeps the hosts: a deploy never touches the site.
    publish_route(settings, "app", service(url="http://127.0.0.1:18002"))
    assert rule_of(settings, "app") == "Host(`app.localhost`) || Host(`www.example.com`)"


def test_a_site_of_an_app_with_no_route_waits_for_its_first_switch(settings: Settings) -> None:
    publish_route(settings, "other", service("other"))
    before = table_path(settings).read_bytes()
    assert not publish_site(settings, Site("app", ("app.localhost", "shop.example.com")))
    assert table_path(settings).read_bytes() == before
    publish_route(settings, "app", service())
    assert rule_of(settings, "app") == "Host(`app.localhost`) || Host(`shop.example.com`)"


def test_an_invalid_site_is_not_published(settings: Settings) -> None:
    publish_route(settings, "app", service())
    before = table_path(settings).read_bytes()
    with pytest.raises(SwitchFailed, match="invalid host name"):
        publish_site(settings, Site("app", ("app.localhost", "evil host")))
    assert table_path(settings).read_bytes() == before
    assert site_of(settings, "app") == Site("app", ("app.localhost",))


def test_switches_and_site_changes_at_once_all_land(settings: Settings) -> None:
    publish_route(settings, "app", service())
    hosts = [f"h{i}.example.com" for i in range(30)]

    def switch() -> None:
        for port in range(18000, 18030):
            publish_route(settings, "app", service(url=f"http://127.0.0.1:{port}"))

    def rehost() -> None:
        for count in range(1, len(hosts) + 1):
            publish_site(settings, Site("app", ("app.localhost", *hosts[:count])))

    threads = [threading.Thread(target=switch), threading.Thread(target=rehost)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http = table(settings)["http"]
    assert http["services"]["app"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:18029"}]
    assert rule_of(settings, "app") == " || ".join(
        f"Host(`{host}`)" for host in ("app.localhost", *hosts)
    )


def test_tidy_publishes_the_sites_it_is_given(settings: Settings) -> None:
    publish_route(settings, "shop", service("shop"))
    tidy(settings, {"shop": Site("shop", ("shop.localhost", "shop.example.com"))})
    assert rule_of(settings, "shop") == "Host(`shop.localhost`) || Host(`shop.example.com`)"


def test_a_route_file_written_with_its_router_keeps_only_its_service(settings: Settings) -> None:
    route_path(settings, "shop").write_bytes(render(doc("shop", hosts=["old.example.com"])))
    tidy(settings, {"shop": Site("shop", ("shop.localhost",))})
    assert rule_of(settings, "shop") == "Host(`shop.localhost`)"
    assert table(settings)["http"]["services"] == service("shop")["http"]["services"]


def https_site(**fields: Any) -> Site:
    return Site("app", ("app.localhost", "www.example.com"), https=True, **fields)


def test_without_https_an_app_has_its_one_web_router() -> None:
    routers = router_document(Site("app", ("app.localhost",)))["http"]["routers"]
    assert list(routers) == ["app"]


def test_with_https_every_host_has_a_websecure_router_that_orders_if_asked() -> None:
    site = https_site(acme=frozenset({"www.example.com"}))
    routers = router_document(site)["http"]["routers"]
    assert sorted(routers) == ["app", "app_tls_app_localhost", "app_tls_www_example_com"]
    secure = routers["app_tls_www_example_com"]
    assert (secure["rule"], secure["entryPoints"]) == ("Host(`www.example.com`)", ["websecure"])
    assert secure["tls"] == {"certResolver": "acme"}
    assert routers["app_tls_app_localhost"]["tls"] == {}
    assert routers["app"]["rule"] == "Host(`app.localhost`) || Host(`www.example.com`)"


def test_hosts_with_a_certificate_redirect_above_the_plain_router() -> None:
    site = https_site(redirected=frozenset({"www.example.com"}))
    routers = router_document(site)["http"]["routers"]
    redirect = routers["app_redirect"]
    assert (redirect["rule"], redirect["entryPoints"]) == ("Host(`www.example.com`)", ["web"])
    assert redirect["middlewares"] == [HTTPS_REDIRECT]
    assert redirect["priority"] > len(routers["app"]["rule"])


def test_hsts_is_sent_over_https_only() -> None:
    document = route_document(https_site(hsts_seconds=600), service())["http"]
    assert document["middlewares"]["_temps-hsts-600"] == {"headers": {"stsSeconds": 600}}
    assert "_temps-hsts-600" not in document["routers"]["app"]["middlewares"]
    assert document["routers"]["app_tls_www_example_com"]["middlewares"] == [
        "_temps-release-v7",
        RETRY,
        "_temps-hsts-600",
    ]
    assert sorted(document["middlewares"]) == ["_temps-hsts-600", "_temps-release-v7", RETRY]
    without = route_document(https_site(), service())["http"]["middlewares"]
    assert sorted(without) == ["_temps-release-v7", RETRY]
    with pytest.raises(SwitchFailed, match="HSTS"):
        validate_site(https_site(hsts_seconds=-1))


def test_in_maintenance_the_serving_routers_name_the_503_and_the_apps_page() -> None:
    site = https_site(
        maintenance=True, retry_after=90, hsts_seconds=600, redirected=frozenset({"app.localhost"})
    )
    document = route_document(site, service())["http"]
    routers = document["routers"]
    wanted = ["_temps-maintenance-90", "app_maintenance"]
    assert routers["app"]["service"] == MAINTENANCE_SERVICE
    assert routers["app"]["middlewares"] == wanted
    secure = routers["app_tls_www_example_com"]
    assert (secure["service"], secure["middlewares"]) == (
        MAINTENANCE_SERVICE,
        [*wanted, "_temps-hsts-600"],
    )
    # The redirect to HTTPS stays, and the app's service stays as deploys left it.
    assert routers["app_redirect"]["middlewares"] == [HTTPS_REDIRECT]
    assert document["services"] == service()["http"]["services"]
    headers = document["middlewares"]["_temps-maintenance-90"]["headers"]
    assert headers["customResponseHeaders"]["Retry-After"] == "90"
    assert document["middlewares"]["app_maintenance"]["errors"] == {
        "status": ["503"],
        "service": PAGES_SERVICE,
        "query": "/_temps/maintenance/app",
    }
    validate_route("app", {"http": document})
    # Out of maintenance, nothing of it is left.
    served = route_document(https_site(), service())["http"]
    assert not [name for name in served["middlewares"] if "maintenance" in name]
    assert {router["service"] for router in served["routers"].values()} == {"app"}


def test_the_static_config_has_websecure_and_the_resolver_with_https_only(
    tmp_path: Path,
) -> None:
    plain_config = static_config(Settings(home=tmp_path))
    assert "websecure" not in plain_config["entryPoints"]
    assert "certificatesResolvers" not in plain_config
    settings = Settings(
        home=tmp_path, https=Address("127.0.0.1", 8443), acme_ca="https://ca.test/dir"
    )
    config = static_config(settings)
    assert config["entryPoints"]["websecure"] == {"address": "127.0.0.1:8443"}
    acme = config["certificatesResolvers"]["acme"]["acme"]
    assert (acme["caServer"], acme["storage"]) == (
        "https://ca.test/dir",
        str(settings.acme_storage),
    )
    assert acme["httpChallenge"] == {"entryPoint": "web"} and acme["tlsChallenge"] == {}


# --- the real Traefik ---------------------------------------------------------------------


def wait_for_status(url: str, host: str, status: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline:
        last = httpx.get(url, headers={"Host": host}, timeout=2.0).status_code
        if last == status:
            break
        time.sleep(0.02)
    return last


def test_the_real_traefik_serves_a_published_route(
    tmp_path: Path, serve: Callable[[bytes], str]
) -> None:
    with managed_traefik(tmp_path, switch_confirm_timeout=10.0) as (settings, proxy):
        assert proxy.ready()
        first = serve(b"blue")
        publish_route(settings, "app", service_document("app", [first], "v1"))
        assert confirm_route(settings, "app", [first], "/", "v1") >= 0

        through = f"{settings.http.url}/"
        response = httpx.get(through, headers={"Host": "app.localhost"}, timeout=2.0)
        assert (response.status_code, response.text) == (200, "blue")
        assert response.headers[RELEASE_HEADER] == "v1"
        other_host = httpx.get(through, headers={"Host": "other.localhost"}, timeout=2.0)
        assert other_host.status_code == 404

        second = serve(b"green")
        publish_route(settings, "app", service_document("app", [second], "v2"))
        confirm_route(settings, "app", [second], "/", "v2")
        response = httpx.get(through, headers={"Host": "app.localhost"}, timeout=2.0)
        assert (response.text, response.headers[RELEASE_HEADER]) == ("green", "v2")

        # Another app at the same release names the same middlewares; a stopped one its own.
        publish_route(settings, "shop", service_document("shop", [first], "v2"))
        confirm_route(settings, "shop", [first], "/", "v2")
        publish.unroute(settings, "docs", "v2", retry_after=30)
        stopped = httpx.get(through, headers={"Host": "docs.localhost"}, timeout=2.0)
        assert stopped.status_code == 503
        assert (stopped.headers[RELEASE_HEADER], stopped.headers["Retry-After"]) == ("v2", "30")
        api = f"{settings.traefik_api.url}/api/http"
        shared = httpx.get(f"{api}/middlewares/_temps-release-v2@file", timeout=2.0).json()
        assert sorted(shared["usedBy"]) == ["app@file", "shop@file"]
        # The Host header is passed on by default: the service document leaves it out.
        balancer = httpx.get(f"{api}/services/app@file", timeout=2.0).json()["loadBalancer"]
        assert balancer["passHostHeader"] is True

        publish.rehost(settings, Site("app", ("app.localhost", "www.example.com")))
        for host in ("app.localhost", "www.example.com"):
            response = httpx.get(through, headers={"Host": host}, timeout=2.0)
            assert (response.status_code, response.text) == (200, "green")
        publish.rehost(settings, Site("app", ("app.localhost",)))
        removed = httpx.get(through, headers={"Host": "www.example.com"}, timeout=2.0)
        assert removed.status_code == 404

        restore_route(settings, "app", None)
        assert wait_for_status(through, "app.localhost", 404, timeout=5.0) == 404
    assert not proxy.alive()
