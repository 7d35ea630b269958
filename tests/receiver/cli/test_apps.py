"""`temps apps`: the words and flags the real parser takes, and how a destroy's answer is told."""

from __future__ import annotations

import pytest

from receiver.cli import build_parser
from receiver.cli.apps import summary


def test_destroy_takes_the_app_its_confirmation_and_volumes() -> None:
    args = build_parser().parse_args(
        ["apps", "destroy", "myapp", "--confirm", "myapp", "--volumes"]
    )
    assert (args.action, args.words, args.confirm, args.volumes) == (
        "destroy",
        ["myapp"],
        "myapp",
        True,
    )
    inferred = build_parser().parse_args(["apps", "destroy", "--confirm", "myapp"])
    assert (inferred.words, inferred.app_flag, inferred.volumes) == ([], None, False)
    named = build_parser().parse_args(["apps", "destroy", "-a", "myapp", "--confirm", "myapp"])
    assert named.app_flag == "myapp"


@pytest.mark.parametrize("action", ["create", "list"])
def test_create_and_list_are_as_they_were(action: str) -> None:
    args = build_parser().parse_args(["apps", action, *(["myapp"] if action == "create" else [])])
    assert args.action == action


def test_a_destroy_is_told_in_a_line_and_each_kept_volume_in_one_more() -> None:
    answer = {
        "app": "myapp",
        "removed": {
            "containers": ["temps-myapp-v2-0123"],
            "images": ["temps/myapp:aaa-0123", "temps/myapp:bbb-0123"],
            "volumes": [],
            "releases": 2,
            "domains": ["www.example.com"],
            "certificates": [],
            "tokens": ["ci"],
            "repository": True,
        },
        "kept": {"volumes": ["temps-0123-myapp-data"]},
    }
    assert summary(answer).splitlines() == [
        "myapp destroyed: 1 container, 2 images, 2 releases, 1 token, 1 domain, "
        "0 uploaded certificates, its repository removed",
        "kept volume temps-0123-myapp-data (its data; remove it with `docker volume rm`)",
    ]
