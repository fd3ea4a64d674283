"""`backup.create`: facts, then one host script that dumps, compresses, hashes and uploads;
then the multipart upload is completed and the manifest written, last.

Two round trips to the host in all. Anything that fails before the manifest exists leaves
no backup behind: the multipart upload is aborted and a single-PUT object deleted (its key
was checked to be new, so it can only be this run's).
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
from .env import BackupEnv
from .manifest import Manifest, now_iso, version_text
from .naming import human_size, key, new_id
from .plan import MIB
from .progress import Progress


@dataclass
class Created:
    manifest: Manifest
    seconds: float
    location: str
    evicted: list[str] = field(default_factory=list)
    round_trips: int = 0


def create(cfg: Config, *, label: str = "", transport: Transport | None = None) -> Created:
    """Make one backup of the environment's database; raises UserError on any failure."""
    env = BackupEnv(cfg)
    settings, store, target, client = env.settings, env.store, env.target, env.client
    started = time.monotonic()
    own = transport is None
    remote = transport or connect(env.host)
    try:
        ui.step(f"backing up {target.label} via {env.host.label} to {store.where}")
        store.check_access()
        facts = plan.parse_facts(remote.run(plan.facts_step(
            env.cache_dir, client, target, create_cache=False)).stdout)
        plan.check_facts(facts, client, host=env.host.label, db=target.label)
        major = facts.server_major or 0
        server_version = version_text(facts.server_version_num or 0)
        ui.ok(f"PostgreSQL {server_version}, pg_dump {facts.client_version_text} "
              f"({client.describe(major)})")

        begun = datetime.now(UTC)
        backup_id = new_id(begun)
        dump_key = key(store.prefix, backup_id, "dump")
        manifest_key = key(store.prefix, backup_id, "manifest")
        if store.size_of(dump_key) is not None or store.size_of(manifest_key) is not None:
            raise UserError(f"backup {backup_id} exists already in {store.where}: "
                            "wait a second and run it again")
        part_size = max(5, settings.part_size_mb) * MIB
        upload_id = store.start_multipart(dump_key)
        written = False
        try:
            upload = plan.Upload(
                put_url=store.presign("put_object", {"Key": dump_key, **store.sse()}),
                put_headers=store.sse_headers(),
                part_urls=tuple(store.part_urls(
                    dump_key, upload_id, plan.part_plan(facts.db_size or 0, part_size))),
                threshold=settings.multipart_threshold_mb * MIB,
                part_size=part_size, concurrency=settings.upload_concurrency)
            step = plan.create_step(env.cache_dir, backup_id, client, major, target, upload,
                                    settings.keep_local)
            with Progress(f"backup {backup_id}") as progress:
                try:
                    out = remote.run(step, on_line=progress.line).stdout
                except CommandFailed as exc:
                    raise UserError(plan.explain_failure(
                        exc.result.exit_code, exc.result.stderr, host=env.host.label,
                        cache_dir=env.cache_dir, db=target.label)) from None
            size, sha256 = _dumped(out)
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
                database=target.dbname, server_version=server_version,
                client_version=facts.client_version_text, client=client.describe(major),
                started_at=now_iso(begun), finished_at=now_iso(datetime.now(UTC)),
                tables=plan.parse_counts(out), label=label, project=cfg.project, env=cfg.env,
                host=env.host.label)
            store.put(manifest_key, manifest.to_json())
            written = True
        finally:
            if not written:
                store.abort_multipart(dump_key, upload_id)
                store.delete_quietly(dump_key)
        evicted = [line.split()[1] for line in out.splitlines() if line.startswith("evicted ")]
        return Created(manifest, time.monotonic() - started, f"s3://{store.bucket}/{dump_key}",
                       evicted, remote.round_trips)
    finally:
        if own:
            remote.close()


def _dumped(stdout: str) -> tuple[int, str]:
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "dumped" and fields[1].isdigit():
            return int(fields[1]), fields[2]
    raise UserError("the host script ended without reporting the dump's size and checksum")


def create_or_alert(cfg: Config, *, label: str = "") -> Created:
    """`create`, with a Slack alert (when configured) for any failure before re-raising."""
    try:
        created = create(cfg, label=label)
    except UserError as exc:
        _alert(cfg, f"backup failed: {exc.message}")
        raise
    except KeyboardInterrupt:
        _alert(cfg, "backup interrupted before it completed; no backup was recorded")
        raise
    m = created.manifest
    ui.ok(f"backup {m.backup_id}{f' ({m.label})' if m.label else ''}: {human_size(m.size)}, "
          f"{len(m.tables)} tables, {m.rows:,} rows, sha256 {m.sha256[:12]}, "
          f"in {created.seconds:.1f}s -> {created.location}")
    return created


def _alert(cfg: Config, text: str) -> None:
    problem = notify.send(cfg, text, "failure")
    if problem:
        ui.warn(problem)
