"""The page an app in maintenance answers with: `maintenance.html` at the root of its live
commit, or a plain one of temps' own when it has none (or no release is live).

Traefik asks the daemon for it at every request to the app's hosts while the app is in
maintenance (its `errors` middleware), and keeps the answer's status its own 503 with
`Retry-After` whatever the daemon says: a daemon that is down costs the page, not the 503.
A page is read from git once per commit.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict

from pipeline.errors import NotFound
from pipeline.git import repo as gitrepo
from pipeline.settings import Settings
from pipeline.sqlite.models import App
from pipeline.sqlite.store import Store

PAGE_FILE = "maintenance.html"
MAX_PAGE_BYTES = 512 * 1024  # a larger file is not served: the plain page is
_KEPT = 64  # pages kept in memory, by app and commit

_lock = threading.Lock()
_pages: OrderedDict[tuple[str, str], bytes | None] = OrderedDict()


def page(settings: Settings, store: Store, app: App) -> bytes:
    """The app's maintenance page, as HTML."""
    live = store.live_release(app)
    found = None if live is None else _committed(settings, app.name, live.commit)
    return found if found is not None else plain_page(app.name)


def plain_page(app: str) -> bytes:
    name = html.escape(app)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{name}: down for maintenance</title></head>\n"
        f"<body><h1>{name} is down for maintenance</h1>\n"
        "<p>It will be back shortly. Please try again in a little while.</p></body></html>\n"
    ).encode()


def _committed(settings: Settings, app: str, commit: str) -> bytes | None:
    key = (app, commit)
    with _lock:
        if key in _pages:
            _pages.move_to_end(key)
            return _pages[key]
    try:
        found = gitrepo.read_file(settings.repo_path(app), commit, PAGE_FILE)
    except (OSError, NotFound):
        return None  # not cached: the repository may be there at the next request
    if found is not None and len(found) > MAX_PAGE_BYTES:
        found = None
    with _lock:
        _pages[key] = found
        while len(_pages) > _KEPT:
            _pages.popitem(last=False)
    return found
