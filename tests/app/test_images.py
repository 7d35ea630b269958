"""Image references as `temps deploy --image` reads them."""

from __future__ import annotations

import pytest

from pipeline.app.images import ImageReference, parse_reference, registry_of
from pipeline.errors import InvalidInput

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/demo:v1", ImageReference("127.0.0.1:5000", "127.0.0.1:5000/demo", "v1")),
        ("localhost/shop/web", ImageReference("localhost", "localhost/shop/web")),
        ("nginx", ImageReference("docker.io", "nginx")),
        ("library/nginx:1.27", ImageReference("docker.io", "library/nginx", "1.27")),
        (
            f"registry.example.com/web:2@{DIGEST}",
            ImageReference("registry.example.com", "registry.example.com/web", "2", DIGEST),
        ),
        (f"ghcr.io/a/b@{DIGEST}", ImageReference("ghcr.io", "ghcr.io/a/b", "latest", DIGEST)),
        ("Index.Docker.io/x/y:t", ImageReference("docker.io", "Index.Docker.io/x/y", "t")),
    ],
)
def test_references_are_read_as_docker_reads_them(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "UPPER/case", "demo:", "demo:-bad", "a//b", "demo@sha256:12", "reg:5000/", "x y"],
)
def test_what_is_not_a_reference_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_reference(text)


def test_the_pinned_reference_names_tag_and_digest() -> None:
    assert parse_reference("127.0.0.1:5000/demo:v1").with_digest(DIGEST).pinned == (
        f"127.0.0.1:5000/demo:v1@{DIGEST}"
    )
    assert parse_reference(f"r.io/demo@{DIGEST}").version == DIGEST


def test_registries_are_kept_by_host_and_port() -> None:
    assert registry_of("https://Registry.example.com:5000/") == "registry.example.com:5000"
    assert registry_of("index.docker.io") == "docker.io"
    with pytest.raises(InvalidInput):
        registry_of("not a host")
