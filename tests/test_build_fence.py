"""The build cgroup's limits as written into a cgroup tree (a directory standing for one)."""

from __future__ import annotations

from pathlib import Path

from pipeline.docker.build import fence_builds, weight_of


def test_docker_shares_map_to_cgroup_v2_weights_as_runc_maps_them() -> None:
    assert weight_of(2) == 1
    assert weight_of(1024) == 39
    assert weight_of(262144) == 10000
    assert weight_of(0) == 1


def test_v1_gets_the_processes_and_the_weight_in_their_own_controllers(tmp_path: Path) -> None:
    for controller in ("pids", "cpu"):
        (tmp_path / controller).mkdir()
    assert fence_builds("abc", 300, 2, root=tmp_path)
    assert (tmp_path / "pids/temps-build-abc/pids.max").read_text() == "300\n"
    assert (tmp_path / "cpu/temps-build-abc/cpu.shares").read_text() == "2\n"


def test_v2_hands_both_controllers_down_to_one_cgroup(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("")
    assert fence_builds("abc", 300, 1024, root=tmp_path)
    assert (tmp_path / "temps-build-abc/pids.max").read_text() == "300\n"
    assert (tmp_path / "temps-build-abc/cpu.weight").read_text() == "39\n"


def test_a_limit_of_zero_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "cpu").mkdir()
    assert fence_builds("abc", 300, 0, root=tmp_path)
    assert not (tmp_path / "cpu/temps-build-abc").exists()


def test_a_tree_that_cannot_be_written_is_no_fence(tmp_path: Path) -> None:
    assert not fence_builds("abc", 300, 2, root=tmp_path / "missing")
