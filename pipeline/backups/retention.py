"""Retention: of an app's good backups, the newest `keep_last`, the newest of each of the
last `keep_daily` days and the newest of each of the `keep_weekly` weeks before those are
kept; the others are removed (files and records) after a new good backup. A failed backup
is kept for its reason until it is older than the oldest good backup kept."""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from pipeline.backups.destinations import folder
from pipeline.backups.kit import BackupKit
from pipeline.sqlite.models import App, Backup, BackupState

log = structlog.get_logger()
DAY = 86400
WEEK = 7 * DAY


def kept(
    good: Sequence[tuple[int, float]],
    keep_daily: int,
    keep_weekly: int,
    now: float,
    keep_last: int = 0,
) -> set[int]:
    """The ids kept of (id, started_at) pairs: the newest keep_last; per day of the last
    keep_daily days and per week of the keep_weekly weeks before them, the newest. Days
    count back from `now`."""
    newest = sorted(good, key=lambda pair: pair[1], reverse=True)[:keep_last]
    newest_of: dict[tuple[str, int], tuple[int, float]] = {}
    for backup_id, started in good:
        age = max(0.0, now - started)
        day = int(age // DAY)
        if day < keep_daily:
            slot = ("day", day)
        else:
            week = int((age - keep_daily * DAY) // WEEK)
            if week >= keep_weekly:
                continue
            slot = ("week", week)
        if slot not in newest_of or started > newest_of[slot][1]:
            newest_of[slot] = (backup_id, started)
    return {backup_id for backup_id, _started in (*newest, *newest_of.values())}


def prune(kit: BackupKit, app: App | None) -> list[int]:
    settings = kit.ctx.settings
    backups = kit.ctx.store.backups.of(app, limit=10_000)
    good = [(b.pk, b.started_at) for b in backups if b.state == BackupState.GOOD]
    keep = kept(
        good,
        settings.backup_keep_daily,
        settings.backup_keep_weekly,
        time.time(),
        keep_last=settings.backup_keep_last,
    )
    oldest = min((started for pk, started in good if pk in keep), default=None)
    removed = []
    for backup in backups:
        if _removable(backup, keep, oldest):
            kit.destination.remove(folder(app.name if app else None, backup.pk))
            kit.ctx.store.backups.forget(backup.pk)
            removed.append(backup.pk)
    if removed:
        log.info("backup.pruned", app=app.name if app else None, backups=removed)
    return removed


def _removable(backup: Backup, keep: set[int], oldest: float | None) -> bool:
    if backup.state == BackupState.GOOD:
        return backup.pk not in keep
    if backup.state == BackupState.FAILED:
        return oldest is not None and backup.started_at < oldest
    return False
