"""App names: those users give (`POST /api/apps`), and a preview's, `<branch slug>--<app>`,
always one DNS label, whatever the branch. A pull request's preview is `pr-<number>--<app>`,
a merge request's `mr-<iid>--<app>` (`refs/pull/42/head`, `refs/merge-requests/7/head`).

A DNS label is 1 to 63 characters of `[a-z0-9-]` that neither starts nor ends with `-`.
A branch may be `Feature/Login_Page` or 200 characters long, so its slug is lowercased and
every run of anything but `[a-z0-9]` becomes one `-`. When the plain name does not fit, or is
taken (another preview's branch has the same slug, or someone's app or domain has that name),
the slug is cut and followed by a short hash of the full ref: the same ref always gets the
same hashed name, and two refs get two names. Only a taken hashed name (which someone would
have to create on purpose) makes the hash longer, one step at a time, so the outcome depends
only on the ref, the app and the names already taken.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

# User-made app names (`POST /api/apps`).
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# Any name an app may have: a user's, or a preview's DNS label.
LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LABEL = 63
SEPARATOR = "--"
HASH_LENGTHS = (8, 12, 16, 20, 24, 28)  # 28 + len("--") + 31 < 63
BRANCHES = "refs/heads/"
# The refs GitHub and GitLab keep in the base repository for a pull (merge) request's head.
PULL_REQUEST = re.compile(r"^refs/pull/([0-9]{1,10})/head$")
MERGE_REQUEST = re.compile(r"^refs/merge-requests/([0-9]{1,10})/head$")


def pull_request_ref(number: int) -> str:
    return f"refs/pull/{number}/head"


def merge_request_ref(iid: int) -> str:
    return f"refs/merge-requests/{iid}/head"


def is_app_name(name: str) -> bool:
    """Whether `name` may name an app's routes, containers, images and repository."""
    return bool(APP_NAME.match(name) or LABEL.match(name))


def branch_of(ref: str) -> str:
    """What a preview's ref reads as in listings: the branch (`feature-x`), or the request
    (`pull request #42`, `merge request !7`)."""
    if found := PULL_REQUEST.match(ref):
        return f"pull request #{found[1]}"
    if found := MERGE_REQUEST.match(ref):
        return f"merge request !{found[1]}"
    return ref.removeprefix(BRANCHES)


def slug(ref: str) -> str:
    """The branch, lowercased, each run of other characters than `[a-z0-9]` one `-`, trimmed;
    `pr-42` for a pull request's ref, `mr-7` for a merge request's."""
    if found := PULL_REQUEST.match(ref):
        return f"pr-{int(found[1])}"
    if found := MERGE_REQUEST.match(ref):
        return f"mr-{int(found[1])}"
    return re.sub(r"[^a-z0-9]+", "-", ref.removeprefix(BRANCHES).lower()).strip("-")


def candidates(ref: str, app: str) -> list[str]:
    """The names a preview of `ref` may take, in the order they are tried."""
    # An app name may end with '-' (`^[a-z][a-z0-9-]{0,30}$`); a label may not.
    tail = SEPARATOR + app.rstrip("-")
    short = slug(ref)
    names = []
    plain = short + tail
    if short and len(plain) <= MAX_LABEL:
        names.append(plain)
    digest = hashlib.sha256(ref.encode("utf-8", "surrogateescape")).hexdigest()
    for length in HASH_LENGTHS:
        room = MAX_LABEL - len(tail) - length - 1
        cut = short[: max(room, 0)].rstrip("-")
        names.append(f"{cut}-{digest[:length]}{tail}" if cut else digest[:length] + tail)
    return names


def preview_name(ref: str, app: str, taken: Callable[[str], bool]) -> str:
    """The first of `candidates` that is not `taken`.

    Raises ValueError in the (never seen) case where every one of them is."""
    for name in candidates(ref, app):
        if not taken(name):
            return name
    raise ValueError(f"every name for a preview of {ref} of {app} is taken")
