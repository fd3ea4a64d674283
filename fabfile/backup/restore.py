"""`backup.restore` and `backup.verify`: pick a complete backup, then one host script that
checks the cached copy (or downloads one) against the manifest's sha256 before anything
touches a database, and runs `pg_restore -j` from a file (it cannot read stdin in parallel).

The client container starts while the checksum is computed and waits for a "go" line, so
its start-up costs nothing; a wrong checksum sends no "go" and the database is left as it was.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fabfile import notify, ui
from fabfile.config import Config
from fabfile.deploy.lock import describe, new_holder
from fabfile.deploy.rollout import lock_dir
from fabfile.errors import UserError
from fabfile.remote import CommandFailed, Transport, connect

from . import plan
from .catalog import Entry, select
from .dump import create_or_alert
from .env import BackupEnv
from .manifest import Manifest, Verification, compare_counts, now_iso
from .naming import DateSpec, human_size, key
from .plan import DbTarget
from .progress import Progress


@dataclass
class Restored:
    manifest: Manifest
    target: str
    source: str
    seconds: float
    counts: dict[str, int]
    warnings: list[str]
    round_trips: int = 0


def choose(env: BackupEnv, spec: DateSpec) -> tuple[Entry, Manifest]:
    """The complete backup `spec` names and its manifest, checked against the stored dump."""
    entry = select(env.store.entries(), spec)
    manifest = env.store.manifest(entry)
    assert entry.dump is not None
    if manifest.dump_key != entry.dump.key or manifest.size != entry.dump.size:
        raise UserError(f"the S3 copy of backup {entry.backup_id} is corrupt: it holds "
                        f"{entry.dump.size} bytes, its manifest says {manifest.size}. "
                        "Restore another backup (inv backup.list)")
    return entry, manifest


def run_restore(env: BackupEnv, entry: Entry, manifest: Manifest, target: DbTarget, *,
                scratch: str = "", admin: DbTarget | None = None,
                transport: Transport | None = None, lock: plan.HostLock | None = None,
                ) -> Restored:
    """Check the bytes, then restore them into `target` (cleaning what the dump holds),
    holding `lock` on the host meanwhile."""
    assert entry.dump is not None
    started = time.monotonic()
    store, client = env.store, env.client
    client.check_network(target)
    get_url = store.presign("get_object", {"Key": entry.dump.key})
    jobs = env.settings.restore_jobs
    step = plan.restore_step(env.cache_dir, manifest.backup_id, client, manifest.server_major,
                             target, manifest.sha256, get_url, jobs=jobs, clean=not scratch,
                             scratch=scratch, admin=admin, lock=lock)
    own = transport is None
    remote = transport or connect(env.host)
    try:
        with Progress(f"{'verify' if scratch else 'restore'} {manifest.backup_id}") as progress:
            try:
                out = remote.run(step, on_line=progress.line).stdout
            except CommandFailed as exc:
                raise UserError(_explain(exc, env, manifest, target)) from None
    finally:
        if own:
            remote.close()
    source = next((line.split()[2] for line in out.splitlines()
                   if line.startswith("phase restore ")), "?")
    warnings = []
    if any(line.startswith("corrupt cache ") for line in out.splitlines()):
        warnings.append(f"the host's cached copy of {manifest.backup_id} had the wrong "
                        "checksum; it was replaced by the S3 copy")
    return Restored(manifest, target.label, source, time.monotonic() - started,
                    plan.parse_counts(out), warnings, remote.round_trips)


def _explain(exc: CommandFailed, env: BackupEnv, manifest: Manifest, target: DbTarget) -> str:
    result = exc.result
    if result.exit_code == 14:
        held = [line[len("lock-held "):] for line in result.stdout.splitlines()
                if line.startswith("lock-held ")]
        try:
            holder = json.loads(held[-1]) if held else None
        except json.JSONDecodeError:
            holder = None
        return (f"the deploy lock on {env.host.label} is held by "
                f"{describe(holder if isinstance(holder, dict) else None)}: a deploy (or "
                "another restore) is changing the app. Nothing was restored: run again when "
                f"it is done (inv lock.status --env={env.cfg.env}), or, if that run is dead, "
                f"release the lock (inv lock.release --env={env.cfg.env} --yes)")
    if result.exit_code == 51:
        found = {line.split()[1]: line.split()[2] for line in result.stdout.splitlines()
                 if line.startswith("corrupt ") and len(line.split()) == 3}
        cache = (f"the host's cached copy is corrupt too (sha256 {found['cache'][:16]}...)"
                 if "cache" in found else "the host has no cached copy")
        return (f"refusing to restore backup {manifest.backup_id}: the S3 copy "
                f"s3://{env.store.bucket}/{manifest.dump_key} is corrupt (sha256 "
                f"{found.get('s3', '?')[:16]}..., the manifest says {manifest.sha256[:16]}...) "
                f"and {cache}. The database was not touched; restore another backup "
                "(inv backup.list)")
    return plan.explain_failure(result.exit_code, result.stderr, host=env.host.label,
                                cache_dir=env.cache_dir, db=target.label)


def restore(cfg: Config, spec: DateSpec, *, target_url: str | None = None,
            assume_yes: bool = False) -> Restored:
    """Restore the chosen backup over the environment's database (after a safety backup),
    or into `target_url`."""
    env = BackupEnv(cfg)
    entry, manifest = choose(env, spec)
    target = plan.target_from_url(target_url) if target_url else env.target
    what = (f"backup {manifest.backup_id} ({human_size(manifest.size)}, {len(manifest.tables)} "
            f"tables, {manifest.rows:,} rows{', ' + manifest.label if manifest.label else ''})")
    if target_url is None:
        ui.warn(f"this replaces the live database {target.label} of {cfg.env} with {what}; "
                "stop the app first: its open transactions hold locks the restore waits for")
        if not ui.confirm("Restore over the live database?", assume_yes=assume_yes):
            raise UserError("restore cancelled: nothing was changed (pass --yes to skip the "
                            "question, e.g. in CI)")
        ui.step("taking a safety backup first (label pre-restore)")
        create_or_alert(cfg, label="pre-restore")
    ui.step(f"restoring {what} into {target.label}")
    lock = None
    if target_url is None:
        holder = new_holder("backup.restore", manifest.backup_id)
        lock = plan.HostLock(lock_dir(cfg), holder.to_json(), holder.token)
    restored = run_restore(env, entry, manifest, target, lock=lock)
    for warning in restored.warnings:
        ui.warn(warning)
    return restored


def verify(cfg: Config, spec: DateSpec) -> Verification:
    """Restore into a scratch database next to the live one, compare row counts with the
    manifest, drop the scratch database, record the result next to the backup."""
    env = BackupEnv(cfg)
    entry, manifest = choose(env, spec)
    scratch = f"verify_{manifest.backup_id.lower()}_{secrets.token_hex(3)}"
    ui.step(f"verifying backup {manifest.backup_id} in scratch database {scratch}")
    try:
        restored = run_restore(env, entry, manifest, env.target.with_db(scratch),
                               scratch=scratch, admin=env.target)
    except UserError as exc:
        _alert(cfg, f"backup verification of {manifest.backup_id} failed: {exc.message}")
        raise
    for warning in restored.warnings:
        ui.warn(warning)
    mismatches = compare_counts(manifest.tables, restored.counts)
    result = Verification(manifest.backup_id, not mismatches, now_iso(datetime.now(UTC)),
                          restored.counts, mismatches, round(restored.seconds, 2))
    env.store.put(key(env.store.prefix, manifest.backup_id, "verified"), result.to_json())
    if mismatches:
        shown = ", ".join(f"{t}: manifest {a}, restored {b}" for t, (a, b) in
                          list(mismatches.items())[:5])
        message = (f"backup {manifest.backup_id} does not restore to what was dumped "
                   f"({len(mismatches)} tables differ: {shown})")
        _alert(cfg, message)
        raise UserError(message)
    return result


def _alert(cfg: Config, text: str) -> None:
    problem = notify.send(cfg, text, "failure")
    if problem:
        ui.warn(problem)
