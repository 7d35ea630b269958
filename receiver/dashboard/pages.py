"""The dashboard's pages as plain data: each names its template (templates/) and what it shows.

Pages take the same models the API answers with (`receiver.api.views` and the views of
domains and formation), so the dashboard shows what the API shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from receiver.api.cron import CronEntryView
from receiver.api.domains import DomainsView
from receiver.api.formation import FormationView
from receiver.api.previews import PreviewBrief
from receiver.api.views import AppBrief, AppView, ReleaseBrief, ReleaseDetail
from receiver.dashboard.graphs import RANGES, Graphs, Sparkline


@dataclass
class Frame:
    """What every page around its body needs."""

    title: str
    csrf: str | None = None  # None on pages seen signed out
    flashes: Sequence[tuple[str, str]] = ()
    crumbs: Sequence[tuple[str, str | None]] = ()
    scripts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """A page's template and the data it fills in."""

    template: str
    context: Mapping[str, object]


def login_page(next_path: str, error: str | None = None) -> Page:
    return Page("login.html", {"next_path": next_path, "error": error})


def apps_page(
    apps: Sequence[tuple[AppBrief, ReleaseBrief | None, Sparkline]], api_url: str
) -> Page:
    """`apps`: each app's view with its newest release (or None) and its last hour's line."""
    count = f"{len(apps)} app" + ("" if len(apps) == 1 else "s") if apps else ""
    return Page("apps.html", {"rows": apps, "count": count, "api_url": api_url})


def app_page(
    app: AppView,
    releases: Sequence[ReleaseDetail],
    hosts: DomainsView | None = None,
    processes: FormationView | None = None,
    processes_error: str | None = None,
    previews: Sequence[PreviewBrief] = (),
    cron: Sequence[CronEntryView] = (),
    graphs: Graphs | None = None,
    shown_range: str = "1h",
) -> Page:
    """`hosts`: the app's domains view (receiver.api.domains), with each host's certificate.
    `processes`: its formation view (receiver.api.formation), with the live release's
    containers; None with `processes_error` when Docker could not say. `previews`: its
    previews (receiver.api.previews), one per branch. `cron`: its scheduled jobs
    (receiver.api.cron), with their next and last runs. `graphs`: its traffic over
    `shown_range` (receiver.dashboard.graphs)."""
    context = {
        "app": app,
        "releases": releases,
        "hosts": hosts,
        "processes": processes,
        "processes_error": processes_error,
        "previews": previews,
        "cron": cron,
        "graphs": graphs,
        "shown_range": shown_range,
        "ranges": RANGES,
    }
    return Page("app.html", context)


def confirm_page(
    *,
    question: str,
    details: Sequence[str],
    action: str,
    csrf: str,
    fields: Mapping[str, str],
    submit: str,
    cancel: str,
    kind: str = "primary",
) -> Page:
    return Page(
        "confirm.html",
        {
            "question": question,
            "details": details,
            "action": action,
            "csrf": csrf,
            "fields": fields,
            "submit": submit,
            "cancel": cancel,
            "kind": kind,
        },
    )


def error_page(message: str, back: str) -> Page:
    return Page("error.html", {"message": message, "back": back})
