"""The route table's text, spliced from each app's part rendered once.

A switch changes one app's route, and the table holds every app's: rendering all of them again
cost a switch 13 ms of the daemon's CPU with 500 apps and 27 ms with 1,000 (1 ms with one);
spliced, 1.7 and 2.5 ms (BENCHMARKS.md, "traefik_rebuild"). So each app's share is kept rendered
(`Part`, JSON text without its braces), and the table is the parts joined in the order of the
apps' names, each shared middleware defined once. Joining text is sound here because no two
apps' objects share a name: an app's routers and services are named after it (app names hold
no "_"), and a shared middleware's name says its value, so two apps naming it define it alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.traefik.documents import SHARED
from pipeline.traefik.dynamic import Dynamic


@dataclass(frozen=True)
class Part:
    """An app's routers, middlewares and services as the table's text, and the definitions
    of the shared middlewares among them, by name."""

    routers: str
    middlewares: str
    services: str
    shared: Mapping[str, str]


def render_part(route: Dynamic) -> Part:
    """The part of an app's whole route (`documents.route_document`)."""
    http = route.get("http", {})
    middlewares = http.get("middlewares", {})
    own = {name: found for name, found in middlewares.items() if not name.startswith(SHARED)}
    shared = {
        name: _compact(found) for name, found in middlewares.items() if name.startswith(SHARED)
    }
    return Part(
        routers=_members(http.get("routers", {})),
        middlewares=_members(own),
        services=_members(http.get("services", {})),
        shared=shared,
    )


def join(parts: Iterable[Part]) -> bytes:
    """The table of these parts, in their order: what `json.dumps` of the merged routes would
    give, compact, with one definition of each shared middleware, before the apps' own."""
    routers: list[str] = []
    middlewares: list[str] = []
    services: list[str] = []
    shared: dict[str, str] = {}
    for part in parts:
        for members, text in (
            (routers, part.routers),
            (middlewares, part.middlewares),
            (services, part.services),
        ):
            if text:
                members.append(text)
        shared.update(part.shared)
    defined = [f"{json.dumps(name)}:{text}" for name, text in sorted(shared.items())]
    sections = [
        f'"{key}":{{{",".join(members)}}}'
        for key, members in (
            ("middlewares", defined + middlewares),
            ("routers", routers),
            ("services", services),
        )
        if members
    ]
    # Traefik refuses an empty section ("cannot be a standalone element") and then freezes
    # every route; with no route at all the document is empty, which it reads as no routes.
    if not sections:
        return b"{}\n"
    return f'{{"http":{{{",".join(sections)}}}}}\n'.encode()


def _compact(value: object) -> str:
    # Compact: Traefik parses the whole table at every switch.
    return json.dumps(value, separators=(",", ":"))


def _members(objects: Mapping[str, object]) -> str:
    """`{"a":...,"b":...}` without its braces; empty for no object."""
    return _compact(objects)[1:-1]
