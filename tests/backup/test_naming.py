"""Backup ids, keys and --date parsing, as data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from fabfile.backup.naming import (
    DateSpec,
    day_prefix,
    human_size,
    id_time,
    key,
    new_id,
    parse_date_spec,
    parse_key,
)
from fabfile.errors import UserError


def test_ids_are_utc_start_times() -> None:
    moment = datetime(2026, 11, 26, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert new_id(moment) == "20261126T020405Z"
    assert id_time("20261126T020405Z") == datetime(2026, 11, 26, 2, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("prefix", "kind", "expected"), [
    ("prod", "dump", "prod/2026/11/26/20261126T020000Z.dump.zst"),
    ("/roster/prod/", "manifest", "roster/prod/2026/11/26/20261126T020000Z.manifest.json"),
    ("", "verified", "2026/11/26/20261126T020000Z.verified.json"),
])
def test_keys(prefix: str, kind: str, expected: str) -> None:
    assert key(prefix, "20261126T020000Z", kind) == expected  # type: ignore[arg-type]
    assert parse_key(prefix, expected) == ("20261126T020000Z", kind)


@pytest.mark.parametrize("object_key", [
    "prod/2026/11/26/20261126T020000Z.dump",
    "prod/2026/11/25/20261126T020000Z.dump.zst",
    "prod/2026/11/26/notes.txt",
    "other/2026/11/26/20261126T020000Z.dump.zst",
    "prod/2026/11/26/x/20261126T020000Z.dump.zst",
    "prod/2026/13/45/20261345T020000Z.dump.zst",
    "prod/.setup-encryption-check",
])
def test_foreign_keys_are_ignored(object_key: str) -> None:
    assert parse_key("prod", object_key) is None


def test_day_prefix() -> None:
    assert day_prefix("prod", date(2026, 1, 2)) == "prod/2026/01/02/"


@pytest.mark.parametrize(("text", "expected"), [
    ("latest", DateSpec("latest")),
    (" LATEST ", DateSpec("latest")),
    ("2026-11-26", DateSpec("day", day=date(2026, 11, 26))),
    ("20261126T020000Z", DateSpec("id", backup_id="20261126T020000Z")),
])
def test_date_specs(text: str, expected: DateSpec) -> None:
    assert parse_date_spec(text) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("2026-13-45", "--date=2026-13-45 is not a valid date (month must be in 1..12)"),
    ("2026-02-30", "--date=2026-02-30 is not a valid date (day is out of range for month)"),
    ("20261345T020000Z", "is not a real time"),
    ("yesterday", "--date=yesterday is not understood"),
    ("26-11-2026", "is not understood"),
    ("", "is not understood"),
])
def test_bad_dates_say_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_date_spec(text)
    assert says in caught.value.message
    assert "YYYY-MM-DD (UTC), latest, or a backup id" in caught.value.message


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (59_052_928, "59.1 MB"),
    (3 * 10**12, "3.0 TB"), (5 * 10**15, "5000.0 TB"),
])
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown
