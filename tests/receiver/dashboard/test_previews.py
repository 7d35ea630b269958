"""The app page's Previews table: each preview's branch, name, live release, commit and URL,
escaped; no table for an app without previews."""

from __future__ import annotations

import re

from receiver.api.previews import PreviewBrief
from receiver.dashboard.pages import Frame, app_page
from receiver.dashboard.templating import render_page
from tests.support.views import APP, app_view, release_view

TABLE_RE = re.compile(r'<table class="table previews">(.*?)</table>', re.S)
HOSTILE = '<script>alert("x")</script>'


def preview(branch: str, name: str, live: bool) -> PreviewBrief:
    view = app_view(
        name=name,
        url=f"http://{name}.localhost",
        live_release=release_view(1, commit="abcdef0123456789ffff") if live else None,
    )
    return PreviewBrief(
        **view.model_dump(), preview_of="demo", branch=branch, ref=f"refs/heads/{branch}"
    )


def test_the_app_page_lists_its_previews() -> None:
    previews = [
        preview("feature-x", "feature-x--demo", live=True),
        preview(HOSTILE, "script-alert-x-script--demo", live=False),
    ]
    page = render_page(Frame("t"), app_page(APP, [], previews=previews))
    table = TABLE_RE.search(page)
    assert table, page
    rows = [row for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S) if "<td" in row]
    assert len(rows) == 2
    assert "feature-x--demo" in rows[0] and "abcdef012345" in rows[0] and "v1" in rows[0]
    assert "http://feature-x--demo.localhost" in rows[0]
    assert HOSTILE not in page and "&lt;script&gt;" in rows[1]


def test_no_table_without_previews() -> None:
    assert "previews" not in render_page(Frame("t"), app_page(APP, []))
