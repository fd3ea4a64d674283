"""Which backups `backup.prune` deletes: pure, so every rule is a table-driven test.

A complete backup stays while it is younger than `retention_days`, or while a keep-count
picks it (the newest of each of the last N days / ISO weeks / months that have one). The
newest complete backup always stays. An incomplete backup (a dump without a manifest) is
garbage once it is a day old: younger ones may still be running.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .catalog import Entry

INCOMPLETE_GRACE = timedelta(days=1)
Upload = tuple[str, str, datetime]


@dataclass(frozen=True)
class Policy:
    retention_days: int = 30
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0


@dataclass(frozen=True)
class Decision:
    """`delete` are the entries to remove (all their objects); `keep` says why each stays."""

    delete: list[Entry] = field(default_factory=list)
    keep: dict[str, str] = field(default_factory=dict)


def _newest_per(entries: list[Entry], bucket: Callable[[Entry], Hashable],
                count: int) -> set[str]:
    chosen: list[str] = []
    seen: set[Hashable] = set()
    for entry in entries:
        slot = bucket(entry)
        if slot not in seen:
            seen.add(slot)
            chosen.append(entry.backup_id)
        if len(chosen) >= count:
            break
    return set(chosen) if count > 0 else set()


def decide(entries: list[Entry], policy: Policy, now: datetime) -> Decision:
    """Apply `policy` at `now` to `entries` (any order)."""
    ordered = sorted(entries, key=lambda e: e.backup_id, reverse=True)
    good = [e for e in ordered if e.complete]
    cutoff = now - timedelta(days=policy.retention_days)
    reasons: dict[str, str] = {}
    picks = [
        ("daily", _newest_per(good, lambda e: e.day, policy.keep_daily)),
        ("weekly", _newest_per(good, lambda e: e.day.isocalendar()[:2], policy.keep_weekly)),
        ("monthly", _newest_per(good, lambda e: (e.day.year, e.day.month), policy.keep_monthly)),
    ]
    delete: list[Entry] = []
    for entry in ordered:
        if not entry.complete:
            seen = max((o.modified for o in entry.objects()), default=entry.started)
            if entry.dump is not None and now - seen < INCOMPLETE_GRACE:
                reasons[entry.backup_id] = "incomplete, less than a day old (may be running)"
            elif entry.dump is None and entry.started >= cutoff:
                reasons[entry.backup_id] = "broken (no dump), within retention"
            else:
                delete.append(entry)
            continue
        if good and entry is good[0]:
            reasons[entry.backup_id] = "newest complete backup"
        elif entry.started >= cutoff:
            reasons[entry.backup_id] = f"younger than {policy.retention_days} days"
        else:
            rule = next((name for name, ids in picks if entry.backup_id in ids), None)
            if rule is None:
                delete.append(entry)
            else:
                reasons[entry.backup_id] = f"kept by keep_{rule}"
    return Decision(delete=delete, keep=reasons)


def stale_uploads(uploads: list[Upload], now: datetime) -> list[Upload]:
    """Unfinished multipart uploads (key, id, initiated) started more than a day ago."""
    return [u for u in uploads if now - u[2] > INCOMPLETE_GRACE]
