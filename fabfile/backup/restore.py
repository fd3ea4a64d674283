"""`backup.restore` and `backup.verify`: pick a complete backup, then one host script that
checks the cached copy (or downloads one) against the manifest's sha256 before anything
touches a database, and restores it exactly (`exact.py`: what the backup does not hold is
dropped first) with `pg_restore -j` from a file (it cannot read stdin in parallel).

The client container starts while the checksum is computed and waits for a "go" line, so
its start-up costs nothing; a wrong checksum sends no "go" and the database is left as it
was. Over the live database `live.py` runs the restore behind the maintenance page.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fabfile import ui
from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import CommandFailed, Step, Transport, connect

from . import exact, plan
from .catalog import Entry, select
from .dump import alert
from .env import BackupEnv
from .exact import RestorePlan
from .manifest import Manifest, Verification, compare_counts, now_iso
from .naming import DateSpec, human_size, key
from .plan import DbTarget, RestoreMode
from .progress import Progress

UNCHANGED = frozenset({14, 31, 50, 51, 61, 62, 63, 64})
"""Exit codes of `restore.sh` after which the database is as it was."""


@dataclass
class Restored:
    manifest: Manifest
    target: str
    source: str
    seconds: float
    counts: dict[str, int]
    warnings: list[str]
    round_trips: int = 0
    dropped: tuple[tuple[str, str], ...] = ()
    pre_restore: str = ""
    """The id of the backup taken first, over the live database."""
    window: float = 0.0
    """Seconds the site spent behind the maintenance page, over the live database."""


class RestoreFailed(UserError):
    """A restore step that failed; `database` says what became of the database."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    @property
    def database(self) -> Literal["untouched", "partly", "unknown"]:
        """`partly`: emptied, then pg_restore failed; `unknown`: the step was cut off."""
        if self.exit_code in UNCHANGED:
            return "untouched"
        return "partly" if self.exit_code == 60 else "unknown"


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


def describe(manifest: Manifest) -> str:
    return (f"backup {manifest.backup_id} ({human_size(manifest.size)}, {len(manifest.tables)} "
            f"tables, {manifest.rows:,} rows{', ' + manifest.label if manifest.label else ''})")


def _step(env: BackupEnv, entry: Entry, manifest: Manifest, target: DbTarget, *,
          mode: RestoreMode, check: bool = False, scratch: str = "",
          admin: DbTarget | None = None, lock: plan.HostLock | None = None) -> Step:
    assert entry.dump is not None
    env.client.check_network(target)
    get_url = env.store.presign("get_object", {"Key": entry.dump.key})
    return plan.restore_step(env.cache_dir, manifest.backup_id, env.client,
                             manifest.server_major, target, manifest.sha256, get_url,
                             jobs=env.settings.restore_jobs, mode=mode, check=check,
                             scratch=scratch, admin=admin, lock=lock)


def _remote(env: BackupEnv, transport: Transport | None, step: Step, title: str,
            manifest: Manifest, target: DbTarget) -> tuple[str, int]:
    """Run `step` with a progress line; (stdout, round trips). Failures: RestoreFailed."""
    remote = transport or connect(env.host)
    try:
        with Progress(title) as progress:
            try:
                out = remote.run(step, on_line=progress.line).stdout
            except CommandFailed as exc:
                raise RestoreFailed(_explain(exc, env, manifest, target),
                                    exc.result.exit_code) from None
        return out, remote.round_trips
    finally:
        if transport is None:
            remote.close()


def check(env: BackupEnv, entry: Entry, manifest: Manifest, target: DbTarget, *,
          mode: RestoreMode, transport: Transport | None = None) -> RestorePlan:
    """The preflight: the dump reaches the host's cache and checks out, and the restore's
    plan shows it can be done. Changes no database; raises RestoreFailed with the fix."""
    step = _step(env, entry, manifest, target, mode=mode, check=True)
    out, _ = _remote(env, transport, step, f"check {manifest.backup_id}", manifest, target)
    return exact.parse(out)


def run_restore(env: BackupEnv, entry: Entry, manifest: Manifest, target: DbTarget, *,
                mode: RestoreMode, scratch: str = "", admin: DbTarget | None = None,
                transport: Transport | None = None, lock: plan.HostLock | None = None,
                ) -> Restored:
    """Check the bytes, then restore them into `target` (see `RestoreMode`), under `lock`."""
    started = time.monotonic()
    step = _step(env, entry, manifest, target, mode=mode, scratch=scratch, admin=admin,
                 lock=lock)
    out, trips = _remote(env, transport, step,
                         f"{'verify' if scratch else 'restore'} {manifest.backup_id}",
                         manifest, target)
    source = next((line.split()[2] for line in out.splitlines()
                   if line.startswith("phase restore ")), "?")
    warnings = []
    if any(line.startswith("corrupt cache ") for line in out.splitlines()):
        warnings.append(f"the host's cached copy of {manifest.backup_id} had the wrong "
                        "checksum; it was replaced by the S3 copy")
    return Restored(manifest, target.label, source, time.monotonic() - started,
                    plan.parse_counts(out), warnings, trips, exact.parse(out).drops)


def _explain(exc: CommandFailed, env: BackupEnv, manifest: Manifest, target: DbTarget) -> str:
    result = exc.result
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
    if result.exit_code == 62:
        return exact.refusal(exact.parse(result.stdout), user=target.get("user", "?"),
                             db=target.dbname, backup_id=manifest.backup_id,
                             target=target.label)
    if result.exit_code == 63:
        return exact.not_empty(exact.parse(result.stdout), backup_id=manifest.backup_id,
                               target=target.label)
    return plan.explain_failure(result.exit_code, result.stderr, host=env.host.label,
                                cache_dir=env.cache_dir, db=target.label)


def restore(cfg: Config, spec: DateSpec, *, target_url: str | None = None,
            replace: bool = False, assume_yes: bool = False) -> Restored:
    """Restore the chosen backup exactly: over the environment's live database (behind the
    maintenance page, after a safety backup), or into `target_url`."""
    env = BackupEnv(cfg)
    entry, manifest = choose(env, spec)
    if target_url is None:
        if replace:
            raise UserError("--replace goes with --target-url: over the live database a "
                            "restore always drops what the backup does not hold")
        if cfg.deploy.engine == "swarm":
            raise UserError(
                "a restore over the live database of a swarm environment is not done by this "
                "tool yet (its maintenance page is the Compose engine's): restore into a new "
                "database with --target-url=URL, set database.url to it and deploy; or stop "
                f"the app first (`docker service scale {cfg.project}_{cfg.app.name}=0` on the "
                "first manager), restore with --target-url=<the live URL> --replace, then "
                "deploy again")
        from .live import restore_live

        return restore_live(env, entry, manifest, assume_yes=assume_yes)
    target = plan.target_from_url(target_url)
    if replace:
        planned = check(env, entry, manifest, target, mode="exact")
        if planned.drops:
            ui.warn(f"--replace drops what {target.label} holds: {exact.named(planned.drops)}")
            if not ui.confirm(f"Drop them and restore {describe(manifest)}?",
                              assume_yes=assume_yes):
                raise UserError("restore cancelled: nothing was changed (pass --yes to skip "
                                "the question)")
    ui.step(f"restoring {describe(manifest)} into {target.label}")
    restored = run_restore(env, entry, manifest, target, mode="exact" if replace else "empty")
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
                               mode="empty", scratch=scratch, admin=env.target)
    except UserError as exc:
        alert(cfg, f"backup verification of {manifest.backup_id} failed: {exc.message}")
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
        alert(cfg, message)
        raise UserError(message)
    return result

