"""What is in the bucket, grouped by backup, and which backup a `--date` means. Pure.

A backup is *complete* when both its dump and its manifest exist; the manifest is written
last, so anything else is an interrupted or damaged backup: listed as such, never restored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from fabfile.errors import UserError

from .naming import DATE_HELP, DateSpec, id_time, parse_key


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class Entry:
    """One backup id and the objects of it that exist."""

    backup_id: str
    dump: StoredObject | None = None
    manifest: StoredObject | None = None
    verified: StoredObject | None = None

    @property
    def started(self) -> datetime:
        return id_time(self.backup_id)

    @property
    def day(self) -> date:
        return self.started.date()

    @property
    def complete(self) -> bool:
        return self.dump is not None and self.manifest is not None

    @property
    def status(self) -> str:
        if self.complete:
            return "complete"
        return "incomplete (no manifest)" if self.dump else "broken (no dump)"

    @property
    def finished(self) -> datetime | None:
        """When the manifest was written: the moment the backup became complete."""
        return self.manifest.modified if self.complete and self.manifest else None

    def objects(self) -> list[StoredObject]:
        return [o for o in (self.dump, self.manifest, self.verified) if o is not None]


def group(prefix: str, objects: Iterable[StoredObject]) -> list[Entry]:
    """Entries for every backup id found among `objects`, newest first; other keys ignored."""
    found: dict[str, dict[str, StoredObject]] = {}
    for obj in objects:
        parsed = parse_key(prefix, obj.key)
        if parsed is not None:
            found.setdefault(parsed[0], {})[parsed[1]] = obj
    return [Entry(backup_id, **parts) for backup_id, parts in
            sorted(found.items(), key=lambda item: item[0], reverse=True)]


def complete(entries: Iterable[Entry]) -> list[Entry]:
    return [e for e in entries if e.complete]


def nearest_dates(entries: Iterable[Entry], day: date) -> list[date]:
    """The closest dates with a complete backup before and after `day`; the two closest on
    one side when the other has none."""
    days = sorted({e.day for e in complete(entries)})
    before = [d for d in days if d < day]
    after = [d for d in days if d > day]
    if before and after:
        return [before[-1], after[0]]
    return before[-2:][::-1] if before else after[:2]


def select(entries: list[Entry], spec: DateSpec) -> Entry:
    """The complete backup `spec` names; a UserError that says what exists when there is none."""
    good = complete(entries)
    if spec.kind == "latest":
        if not good:
            raise UserError("there is no complete backup yet: run inv backup.create first")
        return good[0]
    if spec.kind == "id":
        match = next((e for e in entries if e.backup_id == spec.backup_id), None)
        if match is None:
            newest = f"; the newest is {good[0].backup_id}" if good else ""
            raise UserError(f"there is no backup with id {spec.backup_id}{newest} "
                            "(inv backup.list shows them all)")
        if not match.complete:
            raise UserError(f"backup {match.backup_id} is {match.status}: it is not a complete "
                            "backup and cannot be restored; pick another (inv backup.list)")
        return match
    assert spec.day is not None
    on_day = [e for e in good if e.day == spec.day]
    if on_day:
        return on_day[0]
    near = nearest_dates(entries, spec.day)
    hint = (f"; the nearest dates with one: {', '.join(f'{d:%Y-%m-%d}' for d in near)}"
            if near else "; there are no complete backups at all")
    broken = [e for e in entries if e.day == spec.day]
    note = f" ({len(broken)} incomplete there)" if broken else ""
    raise UserError(f"no complete backup on {spec.day:%Y-%m-%d}{note}{hint} "
                    f"(--date accepts {DATE_HELP})")
