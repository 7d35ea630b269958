"""On a Swarm, each release's container is a service, whose name is a DNS label (63
characters at most): a preview's app name may be 63 characters itself."""

from __future__ import annotations

from pipeline.app.names import candidates
from pipeline.docker.swarm import MAX_SERVICE_NAME, SwarmRuntime

LONG_REF = "refs/heads/Feature/Checkout_Flow/" + "Very-Long-Name" * 5


def test_a_long_previews_service_names_fit_and_stay_apart() -> None:
    runtime = SwarmRuntime("/var/lib/temps", "a1b2c3d4", "")
    long_app = candidates(LONG_REF, "shop")[0]
    assert len(long_app) == 63
    names = {
        runtime.container_name(app, number, role)
        for app in (long_app, long_app[:-6] + "x--shop")
        for number in (1, 2, 123)
        for role in ("", "web-2", "release", "setup")
    }
    assert len(names) == 2 * 3 * 4
    for name in names:
        assert len(name) <= MAX_SERVICE_NAME, name
        assert name.startswith("temps-feature-checkout") and name.endswith("-a1b2c3d4"), name
    again = runtime.container_name(long_app, 2, "web-2")
    assert again == runtime.container_name(long_app, 2, "web-2")
    assert "-v2-web-2-" in again


def test_a_short_name_is_as_on_one_engine() -> None:
    runtime = SwarmRuntime("/var/lib/temps", "a1b2c3d4", "")
    assert runtime.container_name("shop", 3, "web") == "temps-shop-v3-web-a1b2c3d4"
