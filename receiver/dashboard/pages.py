"""The dashboard's pages, as string templates filled by `dashboard_html.fill` (which escapes).

Pages take the same dictionaries the API answers with (`receiver.views`), so the dashboard
shows what the API shows, including keys that views gain later (`traffic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any

from receiver.dashboard.assets import asset_url
from receiver.dashboard.html import (
    ROLLBACK_TARGETS,
    Html,
    badge,
    deploy_seconds,
    fill,
    join,
    path,
    seconds,
    short_sha,
    source_label,
    step_breakdown,
    traffic,
    when,
)

View = Mapping[str, Any]


@dataclass
class Frame:
    """What every page around its body needs."""

    title: str
    csrf: str | None = None  # None on pages seen signed out
    flashes: Sequence[tuple[str, str]] = ()
    crumbs: Sequence[tuple[str, str | None]] = ()
    scripts: list[str] = field(default_factory=list)


LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>$title · temps</title>
<link rel="stylesheet" href="$css">
</head>
<body>
<header class="topbar"><div class="wrap topbar-inner">
<a class="brand" href="/dashboard"><span class="brand-mark" aria-hidden="true"></span>temps</a>
$nav
</div></header>
<main class="wrap">
$crumbs$flashes$body
</main>
$scripts</body>
</html>
""")
FLASH = Template('<div class="flash flash-$kind" role="$role">$message</div>')
NAV = Template("""<nav class="nav"><a href="/dashboard">Apps</a>
<form method="post" action="/dashboard/logout"><input type="hidden" name="csrf" value="$csrf">
<button class="linklike" type="submit">Sign out</button></form></nav>""")


def layout(frame: Frame, body: Html) -> str:
    crumbs = Html("")
    if frame.crumbs:
        items = [
            fill(Template('<a href="$href">$label</a>'), href=href, label=label)
            if href
            else fill(Template('<span aria-current="page">$label</span>'), label=label)
            for label, href in frame.crumbs
        ]
        crumbs = Html(f'<nav class="crumbs" aria-label="Breadcrumb">{join(items, " / ")}</nav>')
    flashes = join(
        fill(
            FLASH,
            kind=kind if kind in ("ok", "error", "info") else "info",
            role="alert" if kind == "error" else "status",
            message=message,
        )
        for kind, message in frame.flashes
    )
    return fill(
        LAYOUT,
        title=frame.title,
        css=asset_url("dashboard.css"),
        nav=fill(NAV, csrf=frame.csrf) if frame.csrf else Html(""),
        crumbs=crumbs,
        flashes=flashes,
        body=body,
        scripts=join(
            fill(Template('<script src="$src" defer></script>\n'), src=asset_url(name))
            for name in frame.scripts
        ),
    )


LOGIN = Template("""<section class="login card">
<h1>Sign in</h1>
<p class="muted">Use the admin token of this temps daemon: the file <code>admin-token</code>
in its home, e.g. <code>sudo cat /var/lib/temps/admin-token</code>.</p>
$error
<form method="post" action="/dashboard/login" class="stack">
<input type="hidden" name="next" value="$next">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password"
 spellcheck="false" autocapitalize="off" required autofocus>
<button class="button" type="submit">Sign in</button>
</form>
</section>""")


def login_page(next_path: str, error: str | None = None) -> Html:
    message = (
        fill(Template('<div class="flash flash-error" role="alert">$e</div>'), e=error)
        if error
        else Html("")
    )
    return fill(LOGIN, next=next_path, error=message)


APPS = Template("""<div class="page-head"><h1>Apps</h1><span class="muted">$count</span></div>
$content""")
APPS_TABLE = Template("""<table class="table">
<thead><tr><th>App</th><th>Live release</th><th>URL</th><th>Last deploy</th></tr></thead>
<tbody>$rows</tbody>
</table>""")
APP_ROW = Template("""<tr>
<td data-label="App"><a class="strong" href="$href">$name</a></td>
<td data-label="Live release">$live</td>
<td data-label="URL"><a href="$url" rel="noopener">$url</a></td>
<td data-label="Last deploy">$last</td>
</tr>""")
NO_APPS = Template("""<div class="card empty"><p>No apps yet. Create one with the API:</p>
<pre class="code">curl -H "Authorization: Bearer $$TOKEN" -H 'content-type: application/json' \\
     -d '{"name":"myapp"}' $api/api/apps</pre></div>""")


def apps_page(apps: Sequence[tuple[View, View | None]], api_url: str) -> Html:
    """`apps`: each app's view with its newest release (or None)."""
    if not apps:
        return fill(APPS, count="", content=fill(NO_APPS, api=api_url))
    rows = [
        fill(
            APP_ROW,
            href=path("apps", app["name"]),
            name=app["name"],
            live=_live_cell(app.get("live_release")),
            url=app["url"],
            last=_last_deploy(newest),
        )
        for app, newest in apps
    ]
    count = f"{len(apps)} app" + ("" if len(apps) == 1 else "s")
    return fill(APPS, count=count, content=fill(APPS_TABLE, rows=join(rows)))


def _live_cell(live: View | None) -> Html:
    if not live:
        return Html('<span class="muted">not deployed</span>')
    return fill(
        Template('<span class="version">$version</span> <code class="sha">$sha</code>'),
        version=live["version"],
        sha=short_sha(live.get("commit")),
    )


def _last_deploy(newest: View | None) -> Html:
    if not newest:
        return Html('<span class="muted">never</span>')
    return fill(
        Template('$badge <span class="muted">$version · $at</span>'),
        badge=badge(newest["state"]),
        version=newest["version"],
        at=when(newest["created_at"]),
    )


APP = Template("""<div class="page-head">
<div><h1>$name</h1><a class="url" href="$url" rel="noopener">$url</a></div>
<div class="actions">$redeploy</div>
</div>
<section class="card summary">
<dl class="meta">
<div><dt>Live release</dt><dd>$live</dd></div>
<div><dt>Live since</dt><dd>$since</dd></div>
<div class="wide"><dt>Push URL</dt><dd><code>$git_url</code></dd></div>
</dl>
</section>
<h2>Releases</h2>
$releases""")
RELEASES_TABLE = Template("""<table class="table releases">
<thead><tr><th>Release</th><th>Status</th><th>Source</th><th>Commit</th><th>Created</th>
<th>Duration</th><th>Switch traffic</th>
<th><span class="sr-only">Actions</span></th></tr></thead>
<tbody>$rows</tbody>
</table>""")
RELEASE_ROW = Template("""<tr>
<td data-label="Release"><a class="version" href="$href">$version</a></td>
<td data-label="Status">$badge</td>
<td data-label="Source">$source</td>
<td data-label="Commit"><code class="sha">$sha</code></td>
<td data-label="Created">$created</td>
<td data-label="Duration">$duration</td>
<td data-label="Switch traffic">$traffic</td>
<td class="row-actions">$action</td>
</tr>""")
NO_RELEASES = Template("""<div class="card empty"><p>Nothing deployed yet. Push a repository
with a Dockerfile at its root:</p>
<pre class="code">git remote add temps $git_url
git push temps main</pre></div>""")


def app_page(app: View, releases: Sequence[View]) -> Html:
    live = app.get("live_release")
    name = app["name"]
    redeploy = (
        fill(
            Template('<a class="button secondary" href="$href">Redeploy</a>'),
            href=path("apps", name, "redeploy"),
        )
        if live
        else Html("")
    )
    table = (
        fill(RELEASES_TABLE, rows=join(_release_row(name, release) for release in releases))
        if releases
        else fill(NO_RELEASES, git_url=app["git_url"])
    )
    return fill(
        APP,
        name=name,
        url=app["url"],
        redeploy=redeploy,
        live=_live_cell(live),
        since=when(live["updated_at"]) if live else Html('<span class="muted">—</span>'),
        git_url=app["git_url"],
        releases=table,
    )


def _release_row(app: str, release: View) -> Html:
    timings: Mapping[str, float] = release.get("timings") or {}
    total = deploy_seconds(timings)
    duration = (
        fill(
            Template('<span class="duration">$total<span class="breakdown">$steps</span></span>'),
            total=seconds(total),
            steps=step_breakdown(timings),
        )
        if total is not None
        else Html('<span class="muted">—</span>')
    )
    return fill(
        RELEASE_ROW,
        href=path("apps", app, "releases", release["number"]),
        version=release["version"],
        badge=badge(release["state"]),
        source=source_label(release),
        sha=short_sha(release.get("commit")),
        created=when(release["created_at"]),
        duration=duration,
        traffic=traffic(release.get("traffic")),
        action=rollback_link(app, release, small=True),
    )


def rollback_link(app: str, release: View, *, small: bool = False) -> Html:
    if release["state"] not in ROLLBACK_TARGETS or not release.get("image"):
        return Html("")
    return fill(
        Template('<a class="button secondary$size" href="$href?release=$number">$label</a>'),
        size=" small" if small else "",
        href=path("apps", app, "rollback"),
        number=release["number"],
        label=f"Roll back to {release['version']}",
    )


CONFIRM = Template("""<section class="card confirm">
<h1>$question</h1>
$details
<form method="post" action="$action" class="actions">
<input type="hidden" name="csrf" value="$csrf">
$fields<button class="button $kind" type="submit">$submit</button>
<a class="button secondary" href="$cancel">Cancel</a>
</form>
</section>""")


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
) -> Html:
    return fill(
        CONFIRM,
        question=question,
        details=join(fill(Template("<p>$p</p>"), p=paragraph) for paragraph in details),
        action=action,
        csrf=csrf,
        fields=join(
            fill(Template('<input type="hidden" name="$k" value="$v">\n'), k=key, v=value)
            for key, value in fields.items()
        ),
        kind=kind,
        submit=submit,
        cancel=cancel,
    )


def error_page(message: str, back: str) -> Html:
    return fill(
        Template(
            '<section class="card"><h1>$message</h1><p><a href="$back">Back</a></p></section>'
        ),
        message=message,
        back=back,
    )
