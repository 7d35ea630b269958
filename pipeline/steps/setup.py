"""A preview's setup: the `[preview] setup` command of main's `temps.toml` runs once per
preview, in a one-off container of its first release, before the release command (a database
of its own: a fresh schema, a seeded copy, that the release command then migrates).

Once means once it succeeded: a setup that fails fails the deploy (the preview serves nothing
new, the app never notices), and the next push runs it again; a daemon stopped while it runs
runs it again at the next deploy, so a setup command must tolerate a second run. Its success
is recorded on the preview (`App.setup_done_at`); rollbacks and later pushes skip it.
"""

from __future__ import annotations

import time

from pipeline.context import Deploy
from pipeline.errors import InvalidInput, ReleaseCommandFailed
from pipeline.previews.branches import settings_of
from pipeline.release.states import ReleaseState as S
from pipeline.steps.build import Built, spec_of


def preview_setup(deploy: Deploy, built: Built) -> None:
    app, ctx = deploy.app, deploy.ctx
    if app.preview_of is None or app.setup_done_at is not None:
        return
    parent = ctx.store.get_app_by_id(app.preview_of)
    try:
        preview = settings_of(ctx.settings, parent)
    except InvalidInput as exc:
        raise ReleaseCommandFailed(f"the preview's setup command could not be read: {exc}") from exc
    if not preview.setup:
        return
    deploy.move(S.RELEASING)
    deploy.say(f"-----> Running the preview's setup command, once: {preview.setup}")
    name = ctx.runtime.container_name(app.name, deploy.release.number, "setup")
    spec = spec_of(deploy, built, name)
    code = ctx.runtime.run_once(spec, preview.setup, deploy.say, preview.setup_timeout)
    if code != 0:
        raise ReleaseCommandFailed(f"the preview's setup command exited with code {code}")
    ctx.store.update_app(app.name, setup_done_at=time.time())
    deploy.say("-----> Setup done; later deploys of this preview skip it")
