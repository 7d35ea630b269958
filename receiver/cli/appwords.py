"""Which app a command acts on: `-a APP`, else the first of its words when it is given in
full, else the app of the repository's `temps` remote (as `heroku` finds its app).

A command's full form has `full` words with the app first (`rollback APP N`); one word fewer
means the app was left out. Commands whose words vary in number say where the app may be:
`least` words are enough for the first to be the app when no remote names one."""

from __future__ import annotations

import sys

from receiver.cli import remote


def take_app(
    given: str | None, words: list[str], full: int, least: int | None = None
) -> tuple[str, list[str]]:
    """(app, the words after it)."""
    if given:
        return given, words
    if len(words) >= full:
        return words[0], words[1:]
    inferred = remote.app()
    if inferred:
        return inferred, words
    if words and len(words) >= (full if least is None else least):
        return words[0], words[1:]
    sys.exit(
        "temps: which app? Name it (`-a APP`), or run this inside a repository "
        "with a `temps` remote"
    )


def settings_start(words: list[str]) -> int:
    """Words before the first KEY=VALUE: the app is among them only when one is."""
    for index, word in enumerate(words):
        if "=" in word:
            return index
    return len(words)
