"""Where an app's commit statuses go: a provider's API, a repository there, and a token.

A preview has no settings of its own: it reports with its app's (`settings_app`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pipeline.errors import InvalidInput


class Provider(enum.StrEnum):
    GITHUB = "github"  # GitHub or GitHub Enterprise: POST /repos/{owner}/{repo}/statuses/{sha}
    GITLAB = "gitlab"  # GitLab, hosted or self-managed: POST /projects/{id}/statuses/{sha}


DEFAULT_API_URLS = {
    Provider.GITHUB: "https://api.github.com",
    Provider.GITLAB: "https://gitlab.com/api/v4",
}
# GitHub: an owner (user or organisation) and a repository name.
GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# GitLab: a project's numeric id, or its full path through its groups and subgroups.
GITLAB_REPOSITORY = re.compile(r"[0-9]{1,20}|[A-Za-z0-9_.-]{1,255}(?:/[A-Za-z0-9_.-]{1,255}){1,20}")
API_URL = re.compile(r"https?://[^\s/?#]{1,253}(?:/[^\s?#]{0,500})?")
MAX_TOKEN = 1024


@dataclass(frozen=True)
class Destination:
    provider: Provider
    api_url: str  # without a trailing slash
    repository: str
    token: str = field(repr=False)  # never in a log line, even by accident


def provider_of(name: str) -> Provider:
    try:
        return Provider(name)
    except ValueError:
        known = ", ".join(repr(p.value) for p in Provider)
        raise InvalidInput(f"unknown status provider {name[:40]!r}: use {known}") from None


def checked_repository(provider: Provider, repository: str) -> str:
    form = GITHUB_REPOSITORY if provider == Provider.GITHUB else GITLAB_REPOSITORY
    dots = any(part in (".", "..") for part in repository.split("/"))
    if not form.fullmatch(repository) or dots:
        shape = "OWNER/REPO" if provider == Provider.GITHUB else "GROUP/PROJECT or a project id"
        raise InvalidInput(f"a {provider} repository is {shape}, got {repository[:200]!r}")
    return repository


def repository_from_url(provider: Provider, repo_url: str | None) -> str:
    """The repository an upstream URL names (`https://github.com/acme/shop.git` →
    `acme/shop`), for a call that leaves the repository out."""
    if not repo_url:
        raise InvalidInput(
            "name the repository (OWNER/REPO, or GROUP/PROJECT on GitLab): the app has no "
            "upstream repository (PUT .../source) to take it from"
        )
    path = urlsplit(repo_url).path.strip("/").removesuffix(".git")
    try:
        return checked_repository(provider, path)
    except InvalidInput:
        raise InvalidInput(
            f"name the repository: the app's upstream {repo_url[:200]!r} does not name a "
            f"{provider} repository"
        ) from None


def checked_api_url(provider: Provider, api_url: str | None) -> str:
    """The API's base URL: the provider's public one by default; http(s) when given."""
    if api_url is None:
        return DEFAULT_API_URLS[provider]
    if not API_URL.fullmatch(api_url):
        raise InvalidInput(f"the API URL must be http(s)://HOST[/PATH], got {api_url[:200]!r}")
    return api_url.rstrip("/")


def checked_token(token: str) -> str:
    if not token or len(token) > MAX_TOKEN or any(c.isspace() for c in token):
        raise InvalidInput(f"the token must be 1 to {MAX_TOKEN} characters, without spaces")
    return token
