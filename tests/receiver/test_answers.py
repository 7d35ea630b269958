"""The OpenAPI document describes every answer, and the answers keep the shape clients read.

No Docker: the document comes from the FastAPI app object (its routes, not a running daemon),
and the answers are built from a real SQLite store the way the routes build them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.release.records import SlotRecord, TrafficRecord
from pipeline.runtime import Instance, Slot
from pipeline.settings import Settings
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import Store
from receiver.api.views import app_view, release_view
from receiver.app import create_app

# Answers that are not JSON, and their media types.
NOT_JSON = {
    "GET /api/apps/{name}/releases/{number}/log": ["text/plain"],  # a release's log, streamed
    # An app's runtime logs, streamed as text, or as server-sent events for the dashboard.
    "GET /api/apps/{name}/logs": ["text/plain", "text/event-stream"],
    "GET /metrics": ["text/plain"],  # Prometheus' text format
}
# Components that are arbitrary JSON on purpose: the temps.toml keys set through the API.
ARBITRARY = {"JsonValue"}
# What makes a schema say something: without any of these it takes any value.
TYPED = {"type", "$ref", "anyOf", "oneOf", "allOf", "const", "enum"}


def loose_parts(
    schema: dict[str, Any], components: dict[str, Any], where: str, seen: set[str]
) -> Iterator[str]:
    """Where `schema` (followed through its references, items, unions and properties) takes
    any value: `{}`, or an object of anything."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in ARBITRARY and name not in seen:
            seen.add(name)
            yield from loose_parts(components[name], components, name, seen)
        return
    free_object = schema.get("type") == "object" and not (
        schema.get("properties") or schema.get("patternProperties")
    )
    if (
        not TYPED & schema.keys()
        or schema.get("additionalProperties") is True
        or (free_object and not isinstance(schema.get("additionalProperties"), dict))
    ):
        yield where
        return
    for union in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(union, []):
            yield from loose_parts(part, components, where, seen)
    if "items" in schema:
        yield from loose_parts(schema["items"], components, f"{where}[]", seen)
    parts = {**schema.get("properties", {}), **schema.get("patternProperties", {})}
    if isinstance(schema.get("additionalProperties"), dict):
        parts["*"] = schema["additionalProperties"]
    for name, part in parts.items():
        yield from loose_parts(part, components, f"{where}.{name}", seen)


def test_every_success_answer_has_a_schema(settings: Settings) -> None:
    document = create_app(settings).openapi()
    components = document["components"]["schemas"]
    answers, loose, seen = 0, [], set[str]()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                content = response.get("content")
                if status == "204":
                    assert content is None, f"{label}: a 204 has no body, yet {content}"
                    continue
                if label in NOT_JSON:
                    assert list(content) == NOT_JSON[label], (label, content)
                    continue
                assert list(content) == ["application/json"], (label, status, content)
                schema = content["application/json"]["schema"]
                assert schema, f"{label} answers {status} with an empty schema"
                answers += 1
                loose += loose_parts(schema, components, f"{label} {status}", seen)
    assert not loose, "answers described as any value:\n" + "\n".join(loose)
    assert answers >= 40, f"only {answers} JSON answers in the document"


def test_answers_leave_out_what_a_record_does_not_have(store: Store, settings: Settings) -> None:
    """A release's slot and traffic records answer as they are stored: an entry off Swarm
    has no `address`, a canary withdrawn before any switch has only `canary`. The view's own
    fields are always there, null when empty."""
    app = store.create_app("demo")
    release = store.create_release(app, source=ReleaseSource.PUSH, commit="0" * 40)
    slot = Slot((Instance("temps-demo-v1-a", 40001),))
    store.set_details(release.pk, slot=SlotRecord.of(slot, {"worker": ["temps-demo-v1-w"]}))
    canary = {"decision": "withdrawn", "reason": "canary errors", "steps": []}
    store.add_traffic(release.pk, TrafficRecord.model_validate({"canary": canary}))

    answer = release_view(store, store.get_release(release.pk)).model_dump(mode="json")
    assert answer["traffic"] == {"canary": canary}
    assert answer["slot"] == {
        "web": [{"container": "temps-demo-v1-a", "host_port": 40001}],
        "worker": [{"container": "temps-demo-v1-w"}],
    }
    assert answer["version"] == "v1" and answer["failure_reason"] is None
    assert answer["config"]["deploy"]["strategy"] == "blue-green"
    assert [event["state"] for event in answer["events"]] == ["queued"]
    shown = app_view(store, settings, {}, app).model_dump(mode="json")
    assert shown["live_release"] is None and shown["domains"] == []
