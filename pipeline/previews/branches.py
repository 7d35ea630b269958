"""A pushed branch and the app's previews: whether the app wants one, the preview made for
the branch (its record, its host, its repository), and its formation.

A preview is an app of its own (`App.preview_of`, `App.preview_ref`), so everything that
deploys, gates, switches, drains, rolls back, tails and runs one-off commands for an app does
it for a preview, by the same code. Its repository borrows the app's objects (git's
alternates): the branch's commits are pushed to the app's repository, and the preview's
`main` names the commit it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pipeline.app import procfile
from pipeline.app.config import PreviewSettings, load_toml
from pipeline.app.names import BRANCHES, branch_of, candidates
from pipeline.app.sealing import Sealer
from pipeline.errors import Conflict, InvalidInput, NotFound
from pipeline.git import repo as gitrepo
from pipeline.hosting import sites
from pipeline.previews import environment
from pipeline.release.records import WEB
from pipeline.settings import Settings
from pipeline.sqlite.models import App
from pipeline.sqlite.store import Store

# Two pushes of branches at once pick their names one after the other.
_naming = threading.Lock()


def wanted(settings: Settings, store: Store, parent: App, ref: str) -> str | None:
    """None when a push of `ref` deploys a preview of `parent`, else why it does not: the
    `[preview]` of the `temps.toml` on main (with the API's settings over it) says so."""
    if not ref.startswith(BRANCHES):
        return "not a branch"
    try:
        preview = settings_of(settings, parent)
    except InvalidInput as exc:
        return str(exc)
    if preview.covers(branch_of(ref)):
        return None
    return "previews are off for it ([preview] in main's temps.toml)"


def settings_of(settings: Settings, parent: App) -> PreviewSettings:
    """The `[preview]` of the `temps.toml` on the app's main, read now (with the API's
    settings over it); InvalidInput when main has none or it is not valid."""
    head = gitrepo.head_commit(settings.repo_path(parent.name))
    if head is None:
        raise InvalidInput("the app has no main yet")
    raw = gitrepo.read_file(settings.repo_path(parent.name), head, "temps.toml") or b""
    try:
        return load_toml(raw.decode("utf-8"), parent.settings).preview
    except (InvalidInput, UnicodeDecodeError) as exc:
        raise InvalidInput(f"main's temps.toml is not valid ({exc})") from exc


def preview_for(
    settings: Settings,
    store: Store,
    sealer: Sealer,
    parent: App,
    ref: str,
    make_room: Callable[[], None],
    *,
    trusted: bool = True,
) -> tuple[App, bool]:
    """The app's preview of `ref`, made now if it has none; and whether it was made now.
    `make_room` runs before one is made, under the same lock as the naming, so that two
    pushes of new branches at once count each other; it raises to refuse the push. A new
    preview gets its environment, formation and resources from the app and its `[preview]`
    (`pipeline.previews.environment`), with no secret of the app's unless `trusted` (False
    for a fork's pull request)."""
    with _naming:
        found = store.previews.for_ref(parent, ref)
        if found is not None:
            _repository(settings, parent, found)  # a first push cut short made none yet
            return found, False
        make_room()
        fields = environment.made_with(sealer, parent, settings_of(settings, parent), trusted)
        for name in candidates(ref, parent.name):
            if _taken(settings, store, name):
                continue
            try:
                preview = store.previews.create(parent, ref, name, **fields)
            except Conflict:
                continue  # made by an app created meanwhile
            _repository(settings, parent, preview)
            sites.rehost(settings, store, preview)  # kept for its first switch to publish
            return preview, True
    raise Conflict(f"every name for a preview of {ref} is taken; nothing was deployed")


def _repository(settings: Settings, parent: App, preview: App) -> None:
    path = settings.repo_path(preview.name)
    if not path.exists():
        gitrepo.init_borrowing(path, settings.repo_path(parent.name))


def _taken(settings: Settings, store: Store, name: str) -> bool:
    try:
        store.get_app(name)
    except NotFound:
        pass
    else:
        return True
    try:
        sites.refuse_taken(settings, store, settings.default_host(name))
    except Conflict:
        return True
    return settings.repo_path(name).exists()


def without_workers(settings: Settings, store: Store, preview: App, commit: str) -> App:
    """The preview with 0 containers of each background process type `commit` declares
    that its formation does not name yet: a preview serves web, and runs workers only when
    scaled (`temps ps scale`)."""
    found = _process_types(settings, preview, commit) - {WEB} - set(preview.formation)
    if not found:
        return preview
    formation = {**preview.formation, **dict.fromkeys(sorted(found), 0)}
    return store.update_app(preview.name, formation=formation)


def _process_types(settings: Settings, app: App, commit: str) -> set[str]:
    """What the build will read; anything wrong in it is for the build to report."""
    repo = settings.repo_path(app.name)
    try:
        raw = gitrepo.read_file(repo, commit, "temps.toml") or b""
        processes = gitrepo.read_file(repo, commit, "Procfile")
        config = load_toml(raw.decode("utf-8"), app.settings)
        text = None if processes is None else processes.decode("utf-8")
        return set(procfile.applied(config, text).processes)
    except (InvalidInput, NotFound, UnicodeDecodeError):
        return set()


def deployed(settings: Settings, preview: App, commit: str) -> None:
    """The preview's main names the commit it runs now, as an app's main does."""
    gitrepo.set_main(settings.repo_path(preview.name), commit)
