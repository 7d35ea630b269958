"""A static site: index.html at the root, or a public/ folder (served as the site's root),
served by Caddy's file server on $PORT. A Procfile's `web:` replaces the server's command.
"""

from __future__ import annotations

from pipeline.builders.images import images_for
from pipeline.builders.plan import Facts, Plan
from pipeline.builders.render import render, shell_command
from pipeline.builders.source import Source, has_file, has_folder

LOOKS_FOR = "index.html or a public/ folder (a static site)"
SERVER = 'caddy file-server --root /srv --listen ":$PORT"'


def detect(source: Source, facts: Facts) -> Plan | None:
    if has_folder(source, "public"):
        site, reason = "public/", "public/"
    elif has_file(source, "index.html"):
        site, reason = ".", "index.html"
    else:
        return None
    dockerfile = render(
        "static.Dockerfile.j2",
        reason=reason,
        app=facts.app,
        port=facts.port,
        images=images_for("static", facts.build, facts.base_images),
        site=site,
        command=shell_command(facts.web or SERVER),
    )
    return Plan("static", "Static site", reason, dockerfile)
