"""`temps.toml` parsing: defaults, every key, and errors that name the exact key."""

from __future__ import annotations

import re

import pytest

from pipeline.app.config import AppConfig, DeploySettings, HealthCheck, load_toml
from pipeline.errors import InvalidInput
from pipeline.runtime import Backend

FULL = """
port = 5000

[healthcheck]
path = "/up"
interval = 0.5
recheck_interval = 0.1
timeout = 1.5
healthy_threshold = 4
unhealthy_threshold = 2
grace_period = 3
deadline = 45.5

[deploy]
strategy = "recreate"
drain_timeout = 12
stop_timeout = 7.5
keep_releases = 9
release_command = "python manage.py migrate"
release_timeout = 120
bake = 15
"""


def refused(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_toml(text)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "port", "check", "deploy"),
    [
        (
            "",
            8000,
            HealthCheck(
                path="/", interval=1.0, recheck_interval=0.25, timeout=2.0,
                healthy_threshold=3, unhealthy_threshold=3, grace_period=0.0, deadline=60.0,
            ),
            DeploySettings(
                strategy="blue-green", drain_timeout=30.0, stop_timeout=10.0, keep_releases=5,
                release_command="", release_timeout=600.0, bake=30.0,
            ),
        ),
        (
            FULL,
            5000,
            HealthCheck(
                path="/up", interval=0.5, recheck_interval=0.1, timeout=1.5,
                healthy_threshold=4, unhealthy_threshold=2, grace_period=3.0, deadline=45.5,
            ),
            DeploySettings(
                strategy="recreate", drain_timeout=12.0, stop_timeout=7.5, keep_releases=9,
                release_command="python manage.py migrate", release_timeout=120.0, bake=15.0,
            ),
        ),
    ],
    ids=["empty-file-has-the-documented-defaults", "every-key-is-parsed"],
)  # fmt: skip
def test_each_key_is_read_or_keeps_its_documented_default(
    text: str, port: int, check: HealthCheck, deploy: DeploySettings
) -> None:
    config = load_toml(text)
    assert (config.port, config.healthcheck, config.deploy) == (port, check, deploy)


def test_an_empty_file_is_the_default_config() -> None:
    assert load_toml("") == AppConfig()


def test_probes_come_sooner_while_a_release_is_in_transition() -> None:
    check = HealthCheck(interval=1.0, recheck_interval=0.25)
    assert check.pause_after(transitional=False) == 1.0
    assert check.pause_after(transitional=True) == 0.25
    # A recheck never waits longer than the ordinary interval.
    slow = HealthCheck(interval=0.2, recheck_interval=0.5)
    assert slow.pause_after(transitional=True) == 0.2


def test_integers_for_durations_become_floats() -> None:
    config = load_toml("[healthcheck]\ngrace_period = 3\n[deploy]\ndrain_timeout = 12\n")
    assert isinstance(config.healthcheck.grace_period, float)
    assert isinstance(config.deploy.drain_timeout, float)


def test_a_section_given_alone_keeps_the_other_defaults() -> None:
    config = load_toml('[deploy]\nstrategy = "recreate"\n')
    assert config.deploy.strategy == "recreate"
    assert config.deploy.keep_releases == 5
    assert config.healthcheck == HealthCheck()
    assert config.port == 8000


def test_the_config_survives_a_round_trip_through_a_dict() -> None:
    config = load_toml(FULL)
    assert AppConfig.from_dict(config.to_dict()) == config


def test_overrides_are_laid_over_the_file_key_by_key() -> None:
    text = 'port = 5000\n[deploy]\nstrategy = "recreate"\nkeep_releases = 9\n'
    config = load_toml(text, {"deploy": {"keep_releases": 2}, "healthcheck": {"path": "/up"}})
    assert config.port == 5000
    assert config.deploy.strategy == "recreate"
    assert config.deploy.keep_releases == 2
    assert config.healthcheck.path == "/up"


def test_overrides_are_validated_like_the_file() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_toml("", {"deploy": {"keep_releases": 0}})
    assert str(caught.value).startswith("temps.toml: deploy.keep_releases must be between ")
    with pytest.raises(InvalidInput) as caught:
        load_toml("", {"deploy": {"drain": 1}})
    assert str(caught.value) == "temps.toml: unknown key deploy.drain"


def test_an_unknown_top_level_key_is_named() -> None:
    assert refused("port = 8000\nworkers = 4\n") == "temps.toml: unknown key workers"


def test_an_unknown_key_in_a_section_is_named_with_its_section() -> None:
    message = refused('[healthcheck]\npath = "/"\nretries = 3\n')
    assert message == "temps.toml: unknown key healthcheck.retries"
    message = refused("[deploy]\ndrain = 5\n")
    assert message == "temps.toml: unknown key deploy.drain"


def test_a_section_that_is_not_a_table_is_refused() -> None:
    assert "[deploy] must be a table" in refused('deploy = "recreate"\n')


@pytest.mark.parametrize(
    ("text", "key", "kind"),
    [
        ('port = "8000"', "port", "an integer"),
        ("port = 80.5", "port", "an integer"),
        ('[healthcheck]\ninterval = "1s"', "healthcheck.interval", "a number"),
        ('[healthcheck]\nhealthy_threshold = "3"', "healthcheck.healthy_threshold", "an integer"),
        ("[healthcheck]\npath = 1", "healthcheck.path", "a string"),
        ('[deploy]\nkeep_releases = "5"', "deploy.keep_releases", "an integer"),
        ("[deploy]\nrelease_command = ['a']", "deploy.release_command", "a string"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_key(text: str, key: str, kind: str) -> None:
    message = refused(text)
    assert message.startswith(f"temps.toml: {key} must be {kind}, got ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("port = true", "port"),
        ("[healthcheck]\nhealthy_threshold = true", "healthcheck.healthy_threshold"),
        ("[deploy]\nkeep_releases = false", "deploy.keep_releases"),
        ("[deploy]\ndrain_timeout = true", "deploy.drain_timeout"),
    ],
)
def test_a_boolean_is_not_taken_for_a_number(text: str, key: str) -> None:
    message = refused(text)
    assert message.startswith(f"temps.toml: {key} must be ")
    assert message.endswith(("got True", "got False"))


@pytest.mark.parametrize(
    ("text", "key", "bounds"),
    [
        ("port = 0", "port", "between 1 and 65535"),
        ("port = 70000", "port", "between 1 and 65535"),
        ("[healthcheck]\ninterval = 0", "healthcheck.interval", "between 0.01 and 600"),
        ("[healthcheck]\nhealthy_threshold = 0", "healthcheck.healthy_threshold", "between 1"),
        ("[healthcheck]\nunhealthy_threshold = 101", "healthcheck.unhealthy_threshold", "and 100"),
        ("[healthcheck]\ngrace_period = -1", "healthcheck.grace_period", "between 0 and 3600"),
        ("[deploy]\ndrain_timeout = -0.5", "deploy.drain_timeout", "between 0 and 86400"),
        ("[deploy]\nkeep_releases = 0", "deploy.keep_releases", "between 1 and 1000"),
        ("[deploy]\nrelease_timeout = 86401", "deploy.release_timeout", "between 1 and 86400"),
        ("[deploy]\nbake = -1", "deploy.bake", "between 0 and 86400"),
        ("[skew]\nkeep = -1", "skew.keep", "between 0 and 604800"),
        ("[skew]\nreplicas = 0", "skew.replicas", "between 1 and 20"),
    ],
)
def test_an_out_of_range_value_names_the_key_and_its_bounds(
    text: str, key: str, bounds: str
) -> None:
    message = refused(text)
    assert message.startswith(f"temps.toml: {key} must be between ")
    assert bounds in message


def test_values_on_the_bounds_are_accepted() -> None:
    config = load_toml("port = 65535\n[deploy]\ndrain_timeout = 0\nkeep_releases = 1\n")
    assert config.port == 65535
    assert config.deploy.drain_timeout == 0.0
    assert config.deploy.keep_releases == 1


def test_an_unknown_strategy_is_refused_with_the_choices() -> None:
    message = refused('[deploy]\nstrategy = "sideways"\n')
    assert message == (
        "temps.toml: deploy.strategy must be one of blue-green, recreate, rolling, canary, "
        "got 'sideways'"
    )


def test_a_health_path_must_start_with_a_slash() -> None:
    message = refused('[healthcheck]\npath = "health"\n')
    assert message == "temps.toml: healthcheck.path must start with '/'"


def test_a_probe_timeout_longer_than_the_deadline_is_refused() -> None:
    message = refused("[healthcheck]\ntimeout = 10\ndeadline = 5\n")
    assert message == "temps.toml: healthcheck.timeout must not exceed healthcheck.deadline"


def test_a_timeout_equal_to_the_deadline_is_accepted() -> None:
    config = load_toml("[healthcheck]\ntimeout = 5\ndeadline = 5\n")
    assert config.healthcheck.timeout == config.healthcheck.deadline == 5.0


def test_invalid_toml_syntax_is_invalid_input_naming_the_file() -> None:
    message = refused("port = = 8000\n")
    assert message.startswith("temps.toml: ")
    assert "line 1" in message


def test_a_duplicated_key_is_a_syntax_error() -> None:
    assert refused("port = 1\nport = 2\n").startswith("temps.toml: ")


def test_a_process_type_gets_its_own_resources_over_the_apps() -> None:
    config = load_toml(
        "[resources]\nmemory_mb = 512\ncpus = 2.0\n[resources.worker]\nmemory_mb = 128\n"
    )
    worker, web = config.resources.of("worker"), config.resources.of("web")
    assert (worker.memory_mb, worker.cpus, worker.pids) == (128, 2.0, 4096)
    assert (web.memory_mb, web.cpus) == (512, 2.0)
    assert AppConfig.from_dict(config.to_dict()) == config  # the snapshot reads back


def test_a_process_types_resources_are_checked_by_their_written_name() -> None:
    assert refused("[resources.worker]\nmemory_mb = -1\n") == (
        "temps.toml: resources.worker.memory_mb must be between 0 and 1.04858e+06, got -1"
    )
    assert refused("[resources.worker]\nswap = 1\n") == (
        "temps.toml: unknown key resources.worker.swap"
    )
    assert "a process type is lowercase" in refused("[resources.Worker]\ncpus = 1.0\n")


def test_worker_overlap_is_true_or_false() -> None:
    assert load_toml("").deploy.worker_overlap is True
    assert load_toml("[deploy]\nworker_overlap = false\n").deploy.worker_overlap is False
    assert refused("[deploy]\nworker_overlap = 0\n") == (
        "temps.toml: deploy.worker_overlap must be true or false, got 0"
    )


def test_swarm_constraints_become_the_placement_swarm_reads() -> None:
    config = load_toml('[swarm]\nconstraints = ["node.role == worker", "node.labels.zone!=b"]\n')
    assert config.swarm.constraints == ["node.role == worker", "node.labels.zone!=b"]
    assert config.swarm.placement == {Backend.SWARM: ("node.role == worker", "node.labels.zone!=b")}
    assert load_toml("").swarm.placement == {Backend.SWARM: ()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[swarm]\nconstraints = ["role==worker"]\n',
            "swarm.constraints[0]: a placement constraint is node.<id|hostname|role|platform.os|"
            "labels.KEY> or engine.labels.KEY, then == or !=, then a value; got 'role==worker'",
        ),
        (
            '[swarm]\nconstraints = "node.role==worker"\n',
            "swarm.constraints must be a list, got 'node.role==worker'",
        ),
        ("[swarm]\nconstraints = [1]\n", "swarm.constraints[0] must be a string, got 1"),
        ('[swarm]\nconstraints = ["node.role==worker\\u0000"]\n', "holds a NUL character"),
        ("[swarm]\nnodes = 3\n", "unknown key swarm.nodes"),
        ("swarm = 1\n", "[swarm] must be a table"),
        (
            "[swarm]\nconstraints = [" + ", ".join(['"node.role==worker"'] * 11) + "]\n",
            "swarm.constraints List should have at most 10 items after validation, not 11",
        ),
    ],
)
def test_a_bad_swarm_section_is_worded_as_before(text: str, message: str) -> None:
    assert refused(text) == f"temps.toml: {message}"


def test_previews_are_off_unless_enabled() -> None:
    assert not load_toml("").preview.covers("feature-x")
    on = load_toml("[preview]\nenabled = true\n").preview
    assert on.covers("feature-x") and on.covers("Fix/Some_Thing")


def test_preview_branches_are_glob_patterns() -> None:
    preview = load_toml('[preview]\nenabled = true\nbranches = ["feature-*", "fix/*"]\n').preview
    assert preview.covers("feature-x") and preview.covers("fix/a/b")
    assert not preview.covers("hotfix") and not preview.covers("Feature-x")
    off = load_toml('[preview]\nenabled = false\nbranches = ["feature-*"]\n').preview
    assert not off.covers("feature-x")


def test_preview_ttl_and_caps_have_defaults_and_read_durations() -> None:
    default = load_toml("[preview]\nenabled = true\n").preview
    assert (default.ttl_seconds, default.max, default.on_max) == (None, 10, "refuse")
    for ttl, seconds in {"90s": 90, "30m": 1800, "12h": 43200, "3d": 259200}.items():
        assert load_toml(f'[preview]\nttl = "{ttl}"\n').preview.ttl_seconds == seconds
    evict = load_toml('[preview]\nmax = 2\non_max = "evict"\n').preview
    assert (evict.max, evict.on_max) == (2, "evict")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[preview]\nenable = true\n", "unknown key preview.enable"),
        ("[preview]\nenabled = 1\n", "preview.enabled must be true or false, got 1"),
        ('[preview]\nbranches = "x"\n', "preview.branches must be a list"),
        ('[preview]\nbranches = [""]\n', "preview.branches[0] must be 1 to 255 characters"),
        ("preview = 1\n", "[preview] must be a table"),
        ('[preview]\nttl = "3x"\n', "preview.ttl must be a duration such as 90s"),
        ('[preview]\nttl = "0s"\n', "preview.ttl must be at least 1 second"),
        ("[preview]\nttl = 3\n", "preview.ttl must be a string"),
        ('[preview]\non_max = "drop"\n', "preview.on_max must be one of refuse, evict"),
        ("[preview]\nmax = 0\n", "preview.max must be between 1 and 1000"),
    ],
)
def test_a_wrong_preview_setting_is_named(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        load_toml(text)


def test_backup_names_the_command_run_before_the_volumes_are_read() -> None:
    config = load_toml('[backup]\ncommand = "pg_dump -f /data/db.dump"\ntimeout = 30\n')
    assert (config.backup.command, config.backup.timeout) == ("pg_dump -f /data/db.dump", 30.0)
    assert AppConfig().backup.command == "" and AppConfig().backup.timeout == 600.0
    assert "backup.timeout" in refused("[backup]\ntimeout = 0\n")
    assert "backup.pause" in refused("[backup]\npause = true\n")


def test_skew_protection_is_off_unless_kept_for_a_while() -> None:
    default = load_toml("").skew
    assert (default.keep, default.replicas, default.cookie) == (0.0, 1, False)
    on = load_toml('[skew]\nkeep = "30m"\nreplicas = 2\ncookie = true\n').skew
    assert (on.keep, on.replicas, on.cookie) == (1800.0, 2, True)
    assert load_toml("[skew]\nkeep = 20\n").skew.keep == 20.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[skew]\nkept = 5\n", "unknown key skew.kept"),
        ('[skew]\nkeep = "30x"\n', "skew.keep must be a duration such as 90s"),
        ('[skew]\nkeep = "8d"\n', "skew.keep must be between 0 and 604800"),
        ("[skew]\ncookie = 1\n", "skew.cookie must be true or false, got 1"),
        ("[skew]\nreplicas = 1.5\n", "skew.replicas must be an integer"),
        ("skew = 1\n", "[skew] must be a table"),
    ],
)
def test_a_wrong_skew_setting_is_named(text: str, message: str) -> None:
    assert message in refused(text)
