"""`backup.create`: one host script dumps, compresses, hashes and uploads; then the multipart
upload is completed and the manifest written, last.

Which client image to run follows the server's major version. The newest manifest says
what that was, so a routine backup is one round trip: the dump script checks the server's
version itself before dumping and stops (exit 13) if its pg_dump would be too old. Only
then, or for the first backup, a facts round trip finds the version first and refuses, with
the fix, what cannot work.

Anything that fails before the manifest exists leaves no backup behind: the multipart
upload is aborted and a single-PUT object deleted (its key was checked to be new, so it can
only be this run's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fabfile import notify, ui
from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import CommandFailed, Transport, connect

from . import plan
from .catalog import Entry
from .env import BackupEnv
from .manifest import Manifest, now_iso, version_text
from .naming import human_size, key, new_id
from .plan import MIB
from .progress import Progress

VERSION_CHANGED = 13


@dataclass
class Created:
    manifest: Manifest
    seconds: float
    location: str
    evicted: list[str] = field(default_factory=list)
    round_trips: int = 0


@dataclass(frozen=True)
class _Expect:
    """What the dump is planned with: the server's major version and a size estimate."""

    major: int
    estimate: int


def create(cfg: Config, *, label: str = "", transport: Transport | None = None,
           protect: str = "") -> Created:
    """Make one backup of the environment's database; raises UserError on any failure. The
    host's cache keeps backup `protect`'s dump whatever `keep_local` says."""
    env = BackupEnv(cfg)
    store, target = env.store, env.target
    env.client.check_network(target)
    started = time.monotonic()
    own = transport is None
    remote = transport or connect(env.host)
    try:
        ui.step(f"backing up {target.label} via {env.host.label} to {store.where}")
        entries = store.entries()
        expect = _from_last_backup(env, entries)
        checked = expect is None
        if expect is None:
            expect = _from_facts(env, remote)
        try:
            return _run(env, remote, entries, expect, label, started, protect)
        except _VersionChanged:
            if checked:
                raise UserError("pg_dump reported a version older than the server, although "
                                "the facts said otherwise; run the backup again") from None
            ui.warn("the server's version changed since the last backup; checking it")
            return _run(env, remote, entries, _from_facts(env, remote), label, started,
                        protect)
    finally:
        if own:
            remote.close()


class _VersionChanged(Exception):
    pass


def _from_last_backup(env: BackupEnv, entries: list[Entry]) -> _Expect | None:
    """The newest complete backup's server version, if it was made with today's client."""
    newest = next((e for e in entries if e.complete), None)
    if newest is None:
        return None
    try:
        last = env.store.manifest(newest)
    except UserError:
        return None
    if last.client != env.client.describe(last.server_major):
        return None
    return _Expect(last.server_major, 4 * last.size)


def _from_facts(env: BackupEnv, remote: Transport) -> _Expect:
    facts = plan.parse_facts(remote.run(plan.facts_step(
        env.cache_dir, env.client, env.target, create_cache=False)).stdout)
    plan.check_facts(facts, env.client, host=env.host.label, db=env.target.label)
    return _Expect(facts.server_major or 0, facts.db_size or 0)


def _run(env: BackupEnv, remote: Transport, entries: list[Entry], expect: _Expect, label: str,
         started: float, protect: str) -> Created:
    settings, store, target, client = env.settings, env.store, env.target, env.client
    begun = datetime.now(UTC)
    backup_id = new_id(begun)
    if any(e.backup_id == backup_id for e in entries):
        raise UserError(f"backup {backup_id} exists already in {store.where}: "
                        "wait a second and run it again")
    dump_key = key(store.prefix, backup_id, "dump")
    manifest_key = key(store.prefix, backup_id, "manifest")
    part_size = max(5, settings.part_size_mb) * MIB
    upload_id = store.start_multipart(dump_key)
    written = False
    try:
        upload = plan.Upload(
            put_url=store.presign("put_object", {"Key": dump_key, **store.sse()}),
            put_headers=store.sse_headers(),
            part_urls=tuple(store.part_urls(dump_key, upload_id,
                                            plan.part_plan(expect.estimate, part_size))),
            threshold=settings.multipart_threshold_mb * MIB,
            part_size=part_size, concurrency=settings.upload_concurrency)
        step = plan.create_step(env.cache_dir, backup_id, client, expect.major, target, upload,
                                settings.keep_local, protect=protect)
        with Progress(f"backup {backup_id}") as progress:
            try:
                out = remote.run(step, on_line=progress.line).stdout
            except CommandFailed as exc:
                if exc.result.exit_code == VERSION_CHANGED:
                    raise _VersionChanged from None
                raise UserError(plan.explain_failure(
                    exc.result.exit_code, exc.result.stderr, host=env.host.label,
                    cache_dir=env.cache_dir, db=target.label)) from None
        size, sha256 = _dumped(out)
        server_num, client_version = plan.parse_versions(out)
        etags = plan.parse_etags(out)
        if etags:
            store.complete_multipart(dump_key, upload_id, etags)
        else:
            store.abort_multipart(dump_key, upload_id)
        stored = store.size_of(dump_key)
        if stored != size:
            raise UserError(f"S3 holds {stored} bytes for {dump_key}, the host sent {size}: "
                            "the upload was not recorded as a backup")
        manifest = Manifest(
            backup_id=backup_id, dump_key=dump_key, size=size, sha256=sha256,
            database=target.dbname, server_version=version_text(server_num or 0),
            client_version=client_version, client=client.describe(expect.major),
            started_at=now_iso(begun), finished_at=now_iso(datetime.now(UTC)),
            tables=plan.parse_counts(out), label=label, project=env.cfg.project,
            env=env.cfg.env, host=env.host.label)
        store.put(manifest_key, manifest.to_json())
        written = True
    finally:
        if not written:
            store.abort_multipart(dump_key, upload_id)
            store.delete_quietly(dump_key)
    evicted = [line.split()[1] for line in out.splitlines() if line.startswith("evicted ")]
    return Created(manifest, time.monotonic() - started, f"s3://{store.bucket}/{dump_key}",
                   evicted, remote.round_trips)


def _dumped(stdout: str) -> tuple[int, str]:
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "dumped" and fields[1].isdigit():
            return int(fields[1]), fields[2]
    raise UserError("the host script ended without reporting the dump's size and checksum")


def create_or_alert(cfg: Config, *, label: str = "", protect: str = "",
                    transport: Transport | None = None) -> Created:
    """`create`, with a Slack alert (when configured) for any failure before re-raising."""
    try:
        created = create(cfg, label=label, protect=protect, transport=transport)
    except UserError as exc:
        alert(cfg, f"backup failed: {exc.message}")
        raise
    except KeyboardInterrupt:
        alert(cfg, "backup interrupted before it completed; no backup was recorded")
        raise
    m = created.manifest
    ui.ok(f"backup {m.backup_id}{f' ({m.label})' if m.label else ''}: {human_size(m.size)}, "
          f"{len(m.tables)} tables, {m.rows:,} rows, PostgreSQL {m.server_version}, pg_dump "
          f"{m.client_version}, sha256 {m.sha256[:12]}, in {created.seconds:.1f}s -> "
          f"{created.location}")
    return created


def alert(cfg: Config, text: str) -> None:
    """A failure message to Slack (when configured); a warning here when that fails."""
    problem = notify.send(cfg, text, "failure")
    if problem:
        ui.warn(problem)
