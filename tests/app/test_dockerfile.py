"""Which images a Dockerfile builds on, as the build checks them against the engine."""

from __future__ import annotations

import pytest

from pipeline.app.dockerfile import images_named, is_image_id


def test_from_and_copy_from_name_images_and_stages_do_not() -> None:
    text = """
    # a comment: FROM evil:latest
    FROM debian:12 AS build
    RUN make
    FROM --platform=linux/amd64 temps/other:abc123
    COPY --from=build /out /app
    COPY --from=temps/third:def456 /secret /x
    COPY --from=0 /a /b
    FROM scratch
    """
    assert images_named(text) == ["debian:12", "temps/other:abc123", "temps/third:def456"]


def test_arg_defaults_are_expanded_as_the_builder_does() -> None:
    text = 'ARG BASE="temps/other:abc"\nARG TAG=1\nFROM ${BASE}\nFROM busybox:$TAG\n'
    assert images_named(text) == ["temps/other:abc", "busybox:1"]


def test_continued_lines_are_one_instruction() -> None:
    assert images_named("FROM \\\n  temps/other:abc\n") == ["temps/other:abc"]


@pytest.mark.parametrize(
    ("reference", "is_id"),
    [
        ("sha256:" + "a" * 64, True),
        ("0123456789ab", True),
        ("busybox:latest", False),
        ("temps/app:0123456789ab", False),
    ],
)
def test_image_ids_are_told_apart_from_names(reference: str, is_id: bool) -> None:
    assert is_image_id(reference) is is_id
