"""`backup.list`: every backup in the bucket with where its copies are and whether a
restore of it was verified; and the age of the newest complete one (for status/doctor)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import connect

from . import plan
from .catalog import Entry
from .env import BackupEnv
from .manifest import Manifest, Verification
from .naming import human_size

STALE_AFTER = timedelta(hours=26)


@dataclass(frozen=True)
class Row:
    entry: Entry
    manifest: Manifest | None
    problem: str
    verification: Verification | None
    cached: bool | None

    @property
    def where(self) -> str:
        in_s3 = self.entry.dump is not None
        if self.cached is None:
            return "S3 (cache unknown)" if in_s3 else "-"
        return {(True, True): "both", (True, False): "S3", (False, True): "cache"}.get(
            (in_s3, self.cached), "-")

    @property
    def verified(self) -> str:
        v = self.verification
        if v is None:
            return "no"
        return f"yes {v.checked_at[:10]}" if v.ok else f"FAILED {v.checked_at[:10]}"

    def cells(self) -> list[str]:
        started = self.entry.started
        status = self.problem or self.entry.status
        size = human_size(self.entry.dump.size) if self.entry.dump else "-"
        label = self.manifest.label if self.manifest else ""
        return [f"{started:%Y-%m-%d}", f"{started:%H:%M:%S}", self.entry.backup_id, size,
                self.where, status, self.verified, label]


COLUMNS = ["date", "time (UTC)", "id", "size", "where", "status", "verified", "label"]


def rows(cfg: Config) -> tuple[list[Row], str | None]:
    """The table's rows, newest first, and a warning when the host's cache could not be read."""
    env = BackupEnv(cfg)
    store = env.store
    with ThreadPoolExecutor(max_workers=2) as pool:
        cache_future = pool.submit(_cache, env)
        entries = store.entries()
        manifests = store.manifests(entries)
        verified = [e for e in entries if e.verified]
        with ThreadPoolExecutor(max_workers=8) as readers:
            checks = dict(zip([e.backup_id for e in verified],
                              readers.map(store.verification, verified), strict=True))
        cache, warning = cache_future.result()
    out = []
    for entry in entries:
        found = manifests.get(entry.backup_id)
        manifest = found if isinstance(found, Manifest) else None
        problem = "damaged manifest" if isinstance(found, UserError) else ""
        if manifest and entry.dump and manifest.size != entry.dump.size:
            problem = "damaged (size differs from manifest)"
        cached = None if cache is None else entry.backup_id in cache
        out.append(Row(entry, manifest, problem, checks.get(entry.backup_id), cached))
    return out, warning


def _cache(env: BackupEnv) -> tuple[dict[str, int] | None, str | None]:
    try:
        remote = connect(env.host)
        try:
            out = remote.run(plan.cache_list_step(env.cache_dir)).stdout
        finally:
            remote.close()
    except UserError as exc:
        return None, f"the host's cache could not be read: {exc.message}"
    return plan.parse_cache_list(out), None


def newest_complete_age(cfg: Config, now: datetime | None = None) -> timedelta | None:
    """How long ago the newest complete backup finished (its manifest was written); None when
    there is none. Raises UserError when the bucket cannot be read."""
    entries = BackupEnv(cfg).store.entries()
    finished = [e.finished for e in entries if e.complete and e.finished]
    if not finished:
        return None
    return (now or datetime.now(UTC)) - max(finished)
