"""Grouping bucket listings into backups and choosing one by --date, as data."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fabfile.backup.catalog import StoredObject, complete, group, nearest_dates, select
from fabfile.backup.naming import DateSpec, key
from fabfile.errors import UserError

T = datetime(2026, 11, 26, tzinfo=UTC)


def objects(*specs: str) -> list[StoredObject]:
    """`ID:kinds` -> the objects a backup with those parts has (d=dump, m=manifest, v=verified)."""
    kinds = {"d": "dump", "m": "manifest", "v": "verified"}
    out = []
    for spec in specs:
        backup_id, parts = spec.split(":")
        out += [StoredObject(key("prod", backup_id, kinds[p]), 10, T)  # type: ignore[arg-type]
                for p in parts]
    return out


LISTING = [*objects("20261120T020000Z:dmv", "20261122T020000Z:dm", "20261122T140000Z:d",
                   "20261124T020000Z:m", "20261126T020000Z:dm", "20261126T030000Z:d"),
           StoredObject("prod/README", 1, T),
           StoredObject("elsewhere/2026/11/26/x.dump.zst", 1, T)]


def test_group_newest_first_and_completeness() -> None:
    entries = group("prod", LISTING)
    assert [(e.backup_id, e.status) for e in entries] == [
        ("20261126T030000Z", "incomplete (no manifest)"),
        ("20261126T020000Z", "complete"),
        ("20261124T020000Z", "broken (no dump)"),
        ("20261122T140000Z", "incomplete (no manifest)"),
        ("20261122T020000Z", "complete"),
        ("20261120T020000Z", "complete"),
    ]
    assert entries[-1].verified is not None
    assert [e.backup_id for e in complete(entries)] == [
        "20261126T020000Z", "20261122T020000Z", "20261120T020000Z"]


@pytest.mark.parametrize(("spec", "chosen"), [
    (DateSpec("latest"), "20261126T020000Z"),
    (DateSpec("day", day=date(2026, 11, 22)), "20261122T020000Z"),
    (DateSpec("id", backup_id="20261120T020000Z"), "20261120T020000Z"),
])
def test_select(spec: DateSpec, chosen: str) -> None:
    assert select(group("prod", LISTING), spec).backup_id == chosen


@pytest.mark.parametrize(("spec", "says"), [
    (DateSpec("day", day=date(2026, 11, 23)),
     "no complete backup on 2026-11-23; the nearest dates with one: 2026-11-22, 2026-11-26"),
    (DateSpec("day", day=date(2026, 11, 24)), "no complete backup on 2026-11-24 (1 incomplete "
                                              "there); the nearest dates with one: 2026-11-22, "
                                              "2026-11-26"),
    (DateSpec("day", day=date(2020, 1, 1)), "the nearest dates with one: 2026-11-20, 2026-11-22"),
    (DateSpec("id", backup_id="20261126T030000Z"),
     "backup 20261126T030000Z is incomplete (no manifest): it is not a complete backup"),
    (DateSpec("id", backup_id="20261124T020000Z"), "is broken (no dump)"),
    (DateSpec("id", backup_id="20200101T000000Z"),
     "there is no backup with id 20200101T000000Z; the newest is 20261126T020000Z"),
])
def test_select_says_what_exists(spec: DateSpec, says: str) -> None:
    with pytest.raises(UserError) as caught:
        select(group("prod", LISTING), spec)
    assert says in caught.value.message


def test_nearest_dates_are_distinct_and_closest() -> None:
    entries = group("prod", LISTING)
    assert nearest_dates(entries, date(2026, 11, 23)) == [date(2026, 11, 22), date(2026, 11, 26)]
    assert nearest_dates(entries, date(2030, 1, 1)) == [date(2026, 11, 26), date(2026, 11, 22)]


def test_nothing_at_all() -> None:
    with pytest.raises(UserError, match="there is no complete backup yet"):
        select([], DateSpec("latest"))
    with pytest.raises(UserError, match="there are no complete backups at all"):
        select([], DateSpec("day", day=date(2026, 1, 1)))
