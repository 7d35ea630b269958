"""Room to deploy: before a deploy builds or boots anything, the disks it writes to (the
home's, for the repository, the records and the logs; Docker's data root, for the image
layers and the new containers) must each have `--min-free-mb` free.

A build that fills a disk fails halfway, and on the home's disk it can take the records'
next write with it; refused here, the deploy fails with the figures before it starts, the
live release serving as it was.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import disk
from pipeline.context import Deploy
from pipeline.errors import SpaceShort


def check_free_space(deploy: Deploy) -> None:
    """Raise SpaceShort, naming each disk short of `--min-free-mb` with what it has free."""
    settings = deploy.ctx.settings
    if settings.min_free_mb <= 0:
        return
    paths = {str(settings.home): settings.home}
    root = deploy.ctx.runtime.data_root()
    if root is not None:
        paths[f"Docker's data ({root})"] = Path(root)
    needed = settings.min_free_mb * disk.MIB
    short = [found for found in disk.disks(paths) if found.free < needed]
    if short:
        found = [str(each) for each in short]
        deploy.log.warning("deploy.space_short", disks=found, min_free_mb=settings.min_free_mb)
        raise SpaceShort(" and ".join(found), settings.min_free_mb)
