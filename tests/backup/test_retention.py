"""Retention decisions as data: (backups, policy, now) in, deletions and reasons out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fabfile.backup.catalog import Entry, StoredObject
from fabfile.backup.naming import key, new_id
from fabfile.backup.retention import Policy, decide, stale_uploads

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def backup(days_ago: float, parts: str = "dm", hour: int = 2) -> Entry:
    started = (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0)
    backup_id = new_id(started)
    made = {"d": "dump", "m": "manifest"}

    def obj(kind: str) -> StoredObject | None:
        if kind[0] not in parts:
            return None
        return StoredObject(key("p", backup_id, made[kind[0]]), 1, started)  # type: ignore[arg-type]

    return Entry(backup_id, dump=obj("d"), manifest=obj("m"))


def ages(entries: list[Entry]) -> list[int]:
    return sorted(round((NOW - e.started).total_seconds() / 86400) for e in entries)


def test_plain_retention_deletes_what_is_older_than_the_window() -> None:
    entries = [backup(d) for d in (0, 1, 29, 31, 45)]
    decision = decide(entries, Policy(retention_days=30), NOW)
    assert ages(decision.delete) == [31, 45]
    assert decision.keep[entries[0].backup_id] == "newest complete backup"
    assert decision.keep[entries[2].backup_id] == "younger than 30 days"


def test_the_newest_complete_backup_stays_however_old() -> None:
    entries = [backup(400), backup(500), backup(401, parts="d")]
    decision = decide(entries, Policy(retention_days=30), NOW)
    assert ages(decision.delete) == [401, 500]
    assert decision.keep == {entries[0].backup_id: "newest complete backup"}


def test_incomplete_backups_get_a_day_of_grace() -> None:
    running = backup(0.2, parts="d", hour=NOW.hour - 1)
    stale = backup(2, parts="d")
    orphan = backup(5, parts="m")
    old_orphan = backup(90, parts="m")
    decision = decide([backup(0), running, stale, orphan, old_orphan], Policy(), NOW)
    assert {e.backup_id for e in decision.delete} == {stale.backup_id, old_orphan.backup_id}
    assert decision.keep[running.backup_id].startswith("incomplete, less than a day old")
    assert decision.keep[orphan.backup_id] == "broken (no dump), within retention"


@pytest.mark.parametrize(("policy", "kept_ages"), [
    (Policy(retention_days=7, keep_daily=10), list(range(0, 10))),
    # 2026-11-26 is a Thursday: ISO weeks end on Sundays 22, 15 and 8 November.
    (Policy(retention_days=7, keep_weekly=4), [0, 1, 2, 3, 4, 5, 6, 11, 18]),
    (Policy(retention_days=7, keep_monthly=3), [0, 1, 2, 3, 4, 5, 6, 26, 57]),
    (Policy(retention_days=1, keep_daily=2, keep_monthly=2), [0, 1, 26]),
])
def test_keep_counts(policy: Policy, kept_ages: list[int]) -> None:
    entries = [backup(d) for d in range(0, 120)]
    decision = decide(entries, policy, NOW)
    kept = [e for e in entries if e not in decision.delete]
    assert ages(kept) == kept_ages


def test_keep_counts_take_the_newest_of_each_day_counting_from_the_newest() -> None:
    entries = [backup(d, hour=h) for d in range(40, 44) for h in (2, 14)]
    decision = decide([backup(0), *entries], Policy(retention_days=30, keep_daily=3), NOW)
    kept = [e for e in entries if e not in decision.delete]
    assert sorted((e.started.day, e.started.hour) for e in kept) == [(16, 14), (17, 14)]


def test_unfinished_uploads_older_than_a_day_are_stale() -> None:
    uploads = [("k1", "u1", NOW - timedelta(hours=23)), ("k2", "u2", NOW - timedelta(hours=25))]
    assert stale_uploads(uploads, NOW) == [uploads[1]]
