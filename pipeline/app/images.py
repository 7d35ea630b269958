"""Image references as `temps deploy --image` takes them, read by Docker's rules.

`127.0.0.1:5000/shop/web:1.4`, `registry.example.com/web@sha256:...`, `nginx` (Docker Hub,
tag `latest`). The first part of the name is a registry when it has a dot or a port, or is
`localhost`; otherwise the image is on Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import InvalidInput

DOCKER_HUB = "docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
REGISTRY = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?"
)
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
PATH = re.compile(rf"{COMPONENT}(?:/{COMPONENT})*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_NAME = 255


@dataclass(frozen=True)
class ImageReference:
    """An image in a registry: `name` as given (registry included, when one was), and its
    tag or digest (a digest wins over a tag when both are given, as Docker pulls them)."""

    registry: str
    name: str
    tag: str = "latest"
    digest: str | None = None

    @property
    def version(self) -> str:
        """What the registry is asked for: the digest, or the tag."""
        return self.digest or self.tag

    @property
    def pinned(self) -> str:
        """The reference as deployed: with its tag, and its digest once known."""
        return f"{self.name}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.name, self.tag, digest)


def parse_reference(text: str) -> ImageReference:
    """Read an image reference; InvalidInput saying what is wrong with it."""
    reference = text.strip()
    rest, _, digest = reference.partition("@")
    name, tag = rest, "latest"
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest[: len(rest) - len(last)] + last.split(":", 1)[0], last.split(":", 1)[1]
    first, slash, path = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry = registry_of(first)
    else:
        registry, path = DOCKER_HUB, name
    if not REGISTRY.fullmatch(registry) or not PATH.fullmatch(path) or len(name) > MAX_NAME:
        raise InvalidInput(f"not an image reference: {text!r} (expected [REGISTRY/]NAME[:TAG])")
    if not TAG.fullmatch(tag):
        raise InvalidInput(f"not an image tag: {tag!r} in {text!r}")
    if digest and not DIGEST.fullmatch(digest):
        raise InvalidInput(f"not an image digest: {digest!r} (expected sha256:<64 hex digits>)")
    return ImageReference(registry, name, tag, digest or None)


def registry_of(text: str) -> str:
    """A registry as logins are kept by: `HOST[:PORT]`, lowercase; Docker Hub's aliases as
    `docker.io`. InvalidInput for anything else (a URL's scheme and path are dropped)."""
    host = re.sub(r"^[a-z]+://", "", text.strip().lower()).split("/", 1)[0]
    if host in HUB_ALIASES:
        return DOCKER_HUB
    if not host or not REGISTRY.fullmatch(host):
        raise InvalidInput(f"not a registry: {text!r} (expected HOST[:PORT])")
    return host
