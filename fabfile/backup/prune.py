"""`backup.prune`: retention in S3 (for stores whose lifecycle rules do not do it, and for
the keep-counts no lifecycle rule can express), unfinished uploads, the host's cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import connect

from . import plan
from .catalog import Entry
from .env import BackupEnv
from .retention import Decision, Policy, decide, stale_uploads


@dataclass
class Pruned:
    decision: Decision
    deleted_keys: list[str] = field(default_factory=list)
    aborted_uploads: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    cache_warning: str | None = None
    dry_run: bool = False


def policy_of(cfg: Config) -> Policy:
    s = BackupEnv(cfg).settings
    return Policy(s.retention_days, s.keep_daily, s.keep_weekly, s.keep_monthly)


def prune(cfg: Config, *, dry_run: bool, now: datetime | None = None) -> Pruned:
    env = BackupEnv(cfg)
    store = env.store
    moment = now or datetime.now(UTC)
    entries = store.entries()
    decision = decide(entries, policy_of(cfg), moment)
    _never_the_newest(entries, decision)
    keys = [o.key for e in decision.delete for o in e.objects()]
    stale = stale_uploads(store.uploads(), moment)
    result = Pruned(decision, keys, [k for k, _, _ in stale], dry_run=dry_run)
    if not dry_run:
        store.delete(keys)
        for upload_key, upload_id, _ in stale:
            store.abort_multipart(upload_key, upload_id)
    try:
        remote = connect(env.host)
        try:
            out = remote.run(plan.cache_prune_step(env.cache_dir, env.settings.keep_local,
                                                   dry_run=dry_run)).stdout
        finally:
            remote.close()
        result.evicted = [line.split()[1] for line in out.splitlines()
                          if line.startswith("evict ")]
    except UserError as exc:
        result.cache_warning = f"the host's cache was not pruned: {exc.message}"
    return result


def _never_the_newest(entries: list[Entry], decision: Decision) -> None:
    complete = sorted((e for e in entries if e.complete), key=lambda e: e.backup_id)
    if complete and any(e.backup_id == complete[-1].backup_id for e in decision.delete):
        raise UserError("refusing to prune: the plan would delete the newest complete backup")
