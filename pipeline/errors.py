"""The errors temps raises, one tree for the whole project.

    TempsError
    ├── NotFound              an app or release that does not exist
    ├── Conflict              the request clashes with the current state
    │   └── BeingDestroyed    the app is being destroyed: nothing of it changes any more
    ├── InvalidInput          bad names, bad temps.toml, bad payloads
    │   ├── TooLarge          a push or body over its configured limit
    │   └── UnsupportedMediaType a request body of a type the endpoint does not take
    ├── Unauthorized          missing or wrong credentials
    ├── Forbidden             valid credentials, not allowed here
    ├── RateLimited           too many failed authentications from one address
    ├── RunLimitReached       an app already runs as many one-off commands as it may
    ├── TailLimitReached      as many log tails are open as the daemon or the app may have
    ├── RunFailed             the engine would not start a one-off container
    ├── MigrationFailed       the database could not be brought to the current schema
    ├── RecordsBusy           another process held the database's lock past the budget
    ├── DiskFull              a write refused for want of space on the disk holding a path
    ├── BackupFailed          a backup or restore could not be made, or did not verify
    └── DeployError           a step of a deploy failed; carries the reason and log tail
        ├── BuildFailed       no Dockerfile, a Dockerfile error, a bad tree
        │   └── LayerGone     a cached layer the build reused was removed meanwhile
        ├── PullFailed        the registry would not give an image deploy's image
        ├── ReleaseCommandFailed the release command exited non-zero
        │   └── CommandTimedOut a one-off command (release, setup, cron) ran past its timeout
        ├── BootFailed        the container could not start or exited
        ├── HealthCheckFailed the health gate did not pass
        ├── SwitchFailed      Traefik did not confirm the new route
        ├── Cancelled         the app is being destroyed: the deploy stopped at its next step
        ├── SpaceShort        a disk a deploy writes to has less than --min-free-mb free
        └── RuntimeUnavailable the Docker engine does not answer

Library exceptions are turned into these at the module that talks to the library;
the receiver turns them into HTTP problem responses in one place.
"""

from __future__ import annotations


class TempsError(Exception):
    """Base of every error temps raises on purpose."""


class NotFound(TempsError):
    pass


class Conflict(TempsError):
    pass


class BeingDestroyed(Conflict):
    """The app is being destroyed (`pipeline.deploy.destroy`): a push, a deploy, a scale or
    any other change of it is refused until it is gone."""

    def __init__(self, app: str) -> None:
        super().__init__(f"app {app!r} is being destroyed; nothing was changed")
        self.app = app


class InvalidInput(TempsError):
    pass


class TooLarge(InvalidInput):
    pass


class UnsupportedMediaType(InvalidInput):
    pass


class Unauthorized(TempsError):
    pass


class Forbidden(TempsError):
    pass


class RateLimited(TempsError):
    pass


class RunLimitReached(TempsError):
    """An app already has `--max-runs-per-app` one-off runs; the message names each."""


class TailLimitReached(TempsError):
    """`--max-log-tails` tails are open in the daemon, or `--max-log-tails-per-app` of the
    app's: each holds a thread and an engine request per container until its client goes."""


class RunFailed(TempsError):
    """The engine refused to create or start a one-off container (its image gone, a mount
    refused): nothing ran."""


class MigrationFailed(TempsError):
    pass


class RecordsBusy(TempsError):
    """Another process held the database's write lock for longer than the daemon waits for it
    (`--records-busy-seconds`): the write was rolled back, nothing of it is kept."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self) -> None:
        super().__init__(
            "the records are busy (database locked by another process); nothing was "
            "deployed, try again"
        )


class DiskFull(TempsError):
    """A write under `path` was refused for want of space (ENOSPC, or SQLite's "database or
    disk is full"): it was rolled back, nothing of it is kept, and what serves goes on.
    `free` is what the disk had left then, worded ("3.1 MB")."""

    def __init__(self, path: str, free: str) -> None:
        super().__init__(
            f"the disk holding {path} is full ({free} free); nothing was deployed, "
            "free space and push again"
        )
        self.path = path


class BackupFailed(TempsError):
    """A backup, its verification or a restore could not be done: the dump command failed,
    a volume could not be read or written, the destination refused, or what was stored
    differs from its manifest."""


class DeployError(TempsError):
    """A deploy step failed. `reason` is one line for the pusher; `log_tail` explains it."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class BuildFailed(DeployError):
    """No Dockerfile, a Dockerfile error, a bad tree, a failed fetch."""


class LayerGone(BuildFailed):
    """A layer the build was reusing from Docker's cache was removed meanwhile (an image
    pruned as the build ran): building again finds the cache as it is now."""


class PullFailed(DeployError):
    """An image deploy's pull failed: an unknown image, credentials the registry refused, a
    registry that does not answer. The reason is the registry's own."""


class ReleaseCommandFailed(DeployError):
    """The release command exited non-zero or ran out of time."""


class CommandTimedOut(ReleaseCommandFailed):
    """A command run once (`Runtime.run_once`) still ran at its timeout: it was removed."""


class BootFailed(DeployError):
    """The container could not start, or exited while booting."""


class HealthCheckFailed(DeployError):
    """The health gate did not pass by its deadline."""


class CanaryFailed(DeployError):
    """The canary was judged worse than the live release, or withdrawn."""


class SwitchFailed(DeployError):
    """Traefik did not confirm the new route."""


class Cancelled(DeployError):
    """The app is being destroyed: its deploy stops before its next step, before any switch."""

    def __init__(self, app: str) -> None:
        super().__init__(f"cancelled: app {app!r} is being destroyed")


class SpaceShort(DeployError):
    """Refused before anything was built or booted: a disk the deploy writes to (the home's,
    Docker's data root) has less free than `--min-free-mb`. `short` names each such disk
    with its figure ("the disk holding /srv/temps has 310.2 MB free")."""

    def __init__(self, short: str, minimum_mb: int) -> None:
        super().__init__(
            f"not enough free space to deploy: {short}, under --min-free-mb ({minimum_mb} MB); "
            "nothing was deployed, free space and push again"
        )


class RuntimeUnavailable(DeployError):
    """The Docker engine does not answer."""
