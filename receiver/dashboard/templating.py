"""The dashboard's Jinja2 environment: templates/*.html, with every printed value escaped.

Pages and the fragments the live log swaps in are rendered here and nowhere else; the
formatters of `formats` are the templates' filters.

Jinja2 is imported with the first page, not at the daemon's start: a daemon nobody browses
does not hold it (about 2 MiB of its RSS).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from receiver.dashboard import formats
from receiver.dashboard.assets import asset_url
from receiver.dashboard.pages import Frame, Page

if TYPE_CHECKING:
    from jinja2 import Environment


def _escaped(value: object) -> object:
    # Values print as html.escape writes them (&quot;, &#x27;; markupsafe writes &#34;, &#39;),
    # the entities the pages use and their tests look for. Markup from a macro passes as is.
    from markupsafe import Markup

    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def _by_name(*functions: Callable[..., object]) -> dict[str, Callable[..., object]]:
    return {function.__name__: function for function in functions}


@functools.cache
def environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    built = Environment(
        loader=PackageLoader("receiver.dashboard"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        finalize=_escaped,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    built.filters.update(
        _by_name(
            formats.ago,
            formats.clock,
            formats.container_tone,
            formats.formation_label,
            formats.iso,
            formats.running_label,
            formats.running_tone,
            formats.seconds,
            formats.short_sha,
            formats.source_label,
            formats.state_label,
            formats.step_breakdown,
            formats.step_label,
            formats.tone,
            formats.utc,
        )
    )
    built.globals.update(
        _by_name(
            asset_url,
            formats.can_roll_back,
            formats.deploy_seconds,
            formats.path,
            formats.traffic,
        )
    )
    return built


def render_page(frame: Frame, page: Page) -> str:
    return environment().get_template(page.template).render(page.context, frame=frame)


def part(name: str, *args: object) -> str:
    """One macro of parts.html on its own, such as the badge the live log swaps in."""
    macro = getattr(environment().get_template("parts.html").module, name)
    return str(macro(*args))
