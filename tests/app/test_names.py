"""A preview's name: a DNS label for any branch, the same for the same ref, distinct for
distinct refs; and a name every place that checks app names accepts."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline.app.names import APP_NAME, candidates, is_app_name, preview_name, slug

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
branches = st.text(min_size=1, max_size=200)
refs = branches.map(lambda branch: f"refs/heads/{branch}")
apps = st.from_regex(APP_NAME, fullmatch=True)


def assign(ref_list: list[str], app: str, taken: set[str]) -> list[str]:
    """Names given one after the other, as pushes make previews."""
    names = []
    for ref in ref_list:
        name = preview_name(ref, app, taken.__contains__)
        taken.add(name)
        names.append(name)
    return names


def test_a_short_branch_is_its_slug() -> None:
    assert preview_name("refs/heads/feature-x", "myapp", lambda _: False) == "feature-x--myapp"
    assert slug("refs/heads/Feature/Login__Page/") == "feature-login-page"


def test_a_long_branch_is_cut_and_hashed() -> None:
    ref = "refs/heads/" + "Feature/" + "A" * 72
    name = preview_name(ref, "myapp", lambda _: False)
    assert len(name) <= 63 and name.endswith("--myapp") and name.startswith("feature-aaa")
    assert DNS_LABEL.match(name)


def test_a_taken_name_gets_the_hashed_one() -> None:
    first = preview_name("refs/heads/feature-x", "myapp", lambda _: False)
    second = preview_name("refs/heads/Feature/X", "myapp", {first}.__contains__)
    assert second != first and second.startswith("feature-x-") and second.endswith("--myapp")
    assert second == preview_name("refs/heads/Feature/X", "myapp", {first}.__contains__)


def test_a_branch_of_no_letter_or_digit_is_its_hash() -> None:
    name = preview_name("refs/heads/___", "myapp", lambda _: False)
    assert re.fullmatch(r"[0-9a-f]{8}--myapp", name)


def test_an_app_ending_with_a_dash_still_gives_a_label() -> None:
    assert preview_name("refs/heads/x", "ab-", lambda _: False) == "x--ab"


@given(ref=refs, app=apps)
def test_always_a_dns_label_that_every_check_accepts(ref: str, app: str) -> None:
    for name in candidates(ref, app):
        assert len(name) <= 63, name
        assert DNS_LABEL.match(name), name
        assert is_app_name(name)


@given(ref=refs, app=apps, taken=st.sets(st.text(max_size=70), max_size=5))
def test_deterministic(ref: str, app: str, taken: set[str]) -> None:
    assert preview_name(ref, app, taken.__contains__) == preview_name(ref, app, taken.__contains__)


@given(ref_list=st.lists(refs, unique=True, max_size=12), app=apps)
def test_distinct_refs_get_distinct_names(ref_list: list[str], app: str) -> None:
    names = assign(ref_list, app, set())
    assert len(set(names)) == len(names)


@given(branch_list=st.lists(st.sampled_from(["a/b", "A-B", "a_b", "a..b", "-a-b-"]), unique=True))
def test_branches_of_one_slug_get_distinct_names(branch_list: list[str]) -> None:
    names = assign([f"refs/heads/{b}" for b in branch_list], "myapp", {"a-b--myapp-taken"})
    assert len(set(names)) == len(names)
    assert all(DNS_LABEL.match(name) for name in names)
