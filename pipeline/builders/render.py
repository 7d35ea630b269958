"""The stacks' Dockerfiles, rendered from the Jinja2 templates in templates/."""

from __future__ import annotations

import json
from collections.abc import Sequence

import jinja2

# Not HTML: a Dockerfile's quotes and ampersands must come out as they are. Every value put
# in one is a path or a command from the commit or the settings, quoted where it is used.
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("pipeline.builders", "templates"),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["exec_form"] = lambda words: json.dumps(list(words))


def render(template: str, **values: object) -> str:
    return _ENV.get_template(template).render(**values)


def shell_command(command: str) -> Sequence[str]:
    """A command line as a CMD's exec form: run by the shell (so `$PORT` is expanded), which
    then hands its process over to the command (`exec`), so signals reach the app."""
    return ["/bin/sh", "-c", f"exec {command}"]
