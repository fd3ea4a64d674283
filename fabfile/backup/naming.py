"""Backup ids, object keys and `--date` values: pure functions, no I/O.

A backup's id is its UTC start time, `20261126T020000Z`; its objects live under
`PREFIX/YYYY/MM/DD/` as `<id>.dump.zst` (a custom-format archive in a zstd frame), then
`<id>.manifest.json` (written last: without it the backup is incomplete) and, once checked,
`<id>.verified.json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from fabfile.errors import UserError

ID_FORMAT = "%Y%m%dT%H%M%SZ"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
Kind = Literal["dump", "manifest", "verified"]
SUFFIXES: dict[Kind, str] = {
    "dump": ".dump.zst",
    "manifest": ".manifest.json",
    "verified": ".verified.json",
}
DATE_HELP = "YYYY-MM-DD (UTC), latest, or a backup id such as 20261126T020000Z"


def new_id(now: datetime) -> str:
    """The id of a backup started at `now` (converted to UTC)."""
    return now.astimezone(UTC).strftime(ID_FORMAT)


def id_time(backup_id: str) -> datetime:
    """When the backup with this id started (UTC)."""
    return datetime.strptime(backup_id, ID_FORMAT).replace(tzinfo=UTC)


def clean_prefix(prefix: str) -> str:
    """The configured prefix without leading or trailing slashes ('' for the bucket root)."""
    return prefix.strip("/")


def day_prefix(prefix: str, day: date) -> str:
    """`PREFIX/YYYY/MM/DD/`: where the backups started on `day` live."""
    head = clean_prefix(prefix)
    return f"{head}/{day:%Y/%m/%d}/" if head else f"{day:%Y/%m/%d}/"


def key(prefix: str, backup_id: str, kind: Kind) -> str:
    """The object key of one part of a backup."""
    return day_prefix(prefix, id_time(backup_id).date()) + backup_id + SUFFIXES[kind]


def parse_key(prefix: str, object_key: str) -> tuple[str, Kind] | None:
    """(id, kind) for a key this module made under `prefix`; None for anything else."""
    head = clean_prefix(prefix)
    rest = object_key[len(head) + 1:] if head else object_key
    if head and not object_key.startswith(head + "/"):
        return None
    parts = rest.split("/")
    if len(parts) != 4:
        return None
    name = parts[3]
    for kind, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            backup_id = name[: -len(suffix)]
            if not ID_PATTERN.match(backup_id):
                return None
            try:
                started = id_time(backup_id)
            except ValueError:
                return None
            if parts[:3] != [f"{started:%Y}", f"{started:%m}", f"{started:%d}"]:
                return None
            return backup_id, kind
    return None


@dataclass(frozen=True)
class DateSpec:
    """What `--date` asked for: the newest backup, the newest of a day, or one id."""

    kind: Literal["latest", "day", "id"]
    day: date | None = None
    backup_id: str | None = None

    def __str__(self) -> str:
        if self.kind == "day":
            return f"{self.day:%Y-%m-%d}"
        return self.backup_id or "latest"


def parse_date_spec(text: str) -> DateSpec:
    """Parse `--date`; a malformed or impossible value is a UserError saying what is accepted."""
    value = text.strip()
    if value.lower() == "latest":
        return DateSpec("latest")
    if ID_PATTERN.match(value):
        try:
            id_time(value)
        except ValueError:
            raise UserError(f"--date={text}: {value!r} is not a real time; "
                            f"expected {DATE_HELP}") from None
        return DateSpec("id", backup_id=value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise UserError(f"--date={text} is not a valid date ({exc}); "
                            f"expected {DATE_HELP}") from None
        return DateSpec("day", day=day)
    raise UserError(f"--date={text} is not understood; expected {DATE_HELP}")


def human_size(size: int) -> str:
    """Bytes in the largest unit that keeps the number above 1 (decimal units, like df -H)."""
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")
