"""The backup namespace end to end on the test bed: the real `inv` CLI, the sshd host with
Docker, the session's PostgreSQL (speaking TLS) and moto's S3. The bench roster (scale 1)
goes through backup, list, restore from the cache and from S3, verify and prune, and comes
back with the same row counts and the same per-table content checksums."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fabfile.backup.naming import key, new_id
from fabfile.backup.prune import prune
from tests.backup.conftest import ENV, BackupBed
from tests.backup.roster import fingerprint
from tests.support.postgres import PgCluster

pytestmark = pytest.mark.testbed


def only_error(stderr: str) -> str:
    """The one error line of a failed run (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def manifests(bed: BackupBed) -> dict[str, dict[str, object]]:
    client = bed.s3.client()
    return {k: json.loads(client.get_object(Bucket=bed.bucket, Key=k)["Body"].read())
            for k in bed.objects() if k.endswith(".manifest.json")}


def create(bed: BackupBed, *args: str) -> dict[str, object]:
    before = set(manifests(bed))
    result = bed.inv("backup.create", f"--env={ENV}", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    new = {k: v for k, v in manifests(bed).items() if k not in before}
    assert len(new) == 1
    return next(iter(new.values()))


def test_round_trip_of_the_roster(bed: BackupBed, tls_pg: PgCluster,
                                  roster_template: dict[str, int]) -> None:
    original = fingerprint(bed.url())
    assert {t: n for t, (n, _) in original.items()} == roster_template

    manifest = create(bed, "--label=first")
    dump_key = str(manifest["dump_key"])
    body = bed.s3.client().get_object(Bucket=bed.bucket, Key=dump_key)
    data = body["Body"].read()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["size"] == len(data)
    assert body["ServerSideEncryption"] == "AES256"
    assert data[:4] == b"\x28\xb5\x2f\xfd"
    assert manifest["tables"] == {f"public.{t}": n for t, n in roster_template.items()}
    assert manifest["server_version"] == manifest["client_version"]
    assert str(manifest["server_version"]).startswith("15.")
    assert manifest["label"] == "first" and manifest["database"] == bed.database
    cached = bed.cache_dir / f"{manifest['backup_id']}.dump.zst"
    assert cached.read_bytes() == data
    assert bed.cache_dir.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in bed.cache_dir.iterdir()) == [cached.name]

    listed = bed.inv("backup.list", f"--env={ENV}", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["where"], row["status"], row["verified"], row["label"]) == (
        manifest["backup_id"], "both", "complete", "no", "first")

    from_cache = tls_pg.create_database("fromcache")
    done = bed.inv("backup.restore", f"--env={ENV}", "--date=latest",
                   f"--target-url={from_cache}?sslmode=require")
    assert done.returncode == 0, done.stderr
    assert "from the host cache" in done.stdout
    assert fingerprint(from_cache) == original

    cached.unlink()
    from_s3 = tls_pg.create_database("froms3")
    day = str(manifest["backup_id"])[:4] + "-" + str(manifest["backup_id"])[4:6] + "-" + str(
        manifest["backup_id"])[6:8]
    done = bed.inv("backup.restore", f"--env={ENV}", f"--date={day}",
                   f"--target-url={from_s3}?sslmode=require")
    assert done.returncode == 0, done.stderr
    assert "from the S3 copy" in done.stdout
    assert fingerprint(from_s3) == original
    assert cached.read_bytes() == data

    checked = bed.inv("backup.verify", f"--env={ENV}", f"--date={manifest['backup_id']}")
    assert checked.returncode == 0, checked.stderr
    assert "311,020 rows, as in its manifest" in checked.stdout
    assert not [d for d in tls_pg.psql("SELECT datname FROM pg_database").split()
                if d.startswith("verify_")]
    [row] = json.loads(bed.inv("backup.list", f"--env={ENV}", "--json").stdout)
    assert row["verified"].startswith("yes")

    tls_pg.psql("DELETE FROM assignments WHERE id % 2 = 0; DROP TABLE attachments CASCADE; "
                "CREATE TABLE scribble (x int)", bed.database)
    asked = bed.inv("backup.restore", f"--env={ENV}", "--date=latest", input_text="y\n")
    assert asked.returncode != 0
    assert "restore cancelled" in only_error(asked.stderr)
    assert fingerprint(bed.url())["assignments"][0] == 80_000
    done = bed.inv("backup.restore", f"--env={ENV}", f"--date={manifest['backup_id']}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert fingerprint(bed.url()) == original
    labels = sorted(str(m["label"]) for m in manifests(bed).values())
    assert labels == ["first", "pre-restore"]
    pre = next(m for m in manifests(bed).values() if m["label"] == "pre-restore")
    assert pre["tables"]["public.assignments"] == 80_000  # type: ignore[index]
    bed.pg.psql(f'DROP DATABASE "{from_cache.rsplit("/", 1)[1]}"')
    bed.pg.psql(f'DROP DATABASE "{from_s3.rsplit("/", 1)[1]}"')


def _copy_backup(bed: BackupBed, manifest: dict[str, object], started: datetime,
                 *, with_manifest: bool = True) -> str:
    """A copy of a real backup under an older id (what an older run would have left)."""
    client = bed.s3.client()
    backup_id = new_id(started)
    prefix = "roster/prod"
    dump_key = key(prefix, backup_id, "dump")
    client.copy_object(Bucket=bed.bucket, Key=dump_key,
                       CopySource={"Bucket": bed.bucket, "Key": str(manifest["dump_key"])})
    if with_manifest:
        body = {**manifest, "backup_id": backup_id, "dump_key": dump_key}
        client.put_object(Bucket=bed.bucket, Key=key(prefix, backup_id, "manifest"),
                          Body=json.dumps(body).encode())
    return backup_id


def test_prune_keeps_the_newest_and_young_backups(bed: BackupBed, tls_pg: PgCluster) -> None:
    manifest = create(bed)
    now = datetime.now(UTC)
    old = _copy_backup(bed, manifest, now - timedelta(days=45))
    older = _copy_backup(bed, manifest, now - timedelta(days=60))
    unfinished = _copy_backup(bed, manifest, now - timedelta(days=3), with_manifest=False)
    young = _copy_backup(bed, manifest, now - timedelta(days=10))
    for n in range(4):
        (bed.cache_dir / f"2020010{n + 1}T000000Z.dump.zst").write_bytes(b"old")
    before = bed.objects()

    dry = bed.inv("backup.prune", f"--env={ENV}", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 backup(s) (4 objects)" in dry.stdout
    assert "keep: incomplete, less than a day old (may be running)" in dry.stdout
    assert bed.objects() == before
    assert len(list(bed.cache_dir.glob("*.dump.zst"))) == 5

    done = bed.inv("backup.prune", f"--env={ENV}")
    assert done.returncode == 0, done.stderr
    remaining = {k.rsplit("/", 1)[1].split(".")[0] for k in bed.objects()}
    assert remaining == {str(manifest["backup_id"]), young, unfinished}
    assert not {old, older} & remaining
    assert sorted(p.name for p in bed.cache_dir.glob("*.dump.zst")) == [
        "20200103T000000Z.dump.zst", "20200104T000000Z.dump.zst",
        f"{manifest['backup_id']}.dump.zst"]

    target = tls_pg.create_database("afterprune")
    done = bed.inv("backup.restore", f"--env={ENV}", f"--date={young}",
                   f"--target-url={target}?sslmode=require")
    assert done.returncode == 0, done.stderr
    assert fingerprint(target) == fingerprint(bed.url())


def test_prune_never_deletes_the_newest_complete_backup(bed: BackupBed) -> None:
    manifest = create(bed)
    cfg = bed.config()
    result = prune(cfg, dry_run=False, now=datetime.now(UTC) + timedelta(days=400))
    assert result.decision.delete == []
    assert result.decision.keep[str(manifest["backup_id"])] == "newest complete backup"
    assert len(bed.objects()) == 2


def test_prune_aborts_unfinished_uploads_older_than_a_day(bed: BackupBed) -> None:
    """moto reports every upload as initiated in 2010, so this one is old enough."""
    client = bed.s3.client()
    upload = client.create_multipart_upload(Bucket=bed.bucket,
                                            Key="roster/prod/2026/01/01/20260101T000000Z.dump.zst")
    cfg = bed.config()
    assert prune(cfg, dry_run=True).aborted_uploads == [upload["Key"]]
    assert client.list_multipart_uploads(Bucket=bed.bucket).get("Uploads")
    assert prune(cfg, dry_run=False).aborted_uploads == [upload["Key"]]
    assert not client.list_multipart_uploads(Bucket=bed.bucket).get("Uploads")


def test_setup_merges_the_lifecycle_rule_and_makes_the_cache(bed: BackupBed) -> None:
    client = bed.s3.client()
    theirs = {"ID": "logs-expiry", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
              "Expiration": {"Days": 7}}
    client.put_bucket_lifecycle_configuration(Bucket=bed.bucket,
                                              LifecycleConfiguration={"Rules": [theirs]})
    for _ in range(2):
        done = bed.inv("backup.setup", f"--env={ENV}")
        assert done.returncode == 0, done.stdout + done.stderr
    rules = client.get_bucket_lifecycle_configuration(Bucket=bed.bucket)["Rules"]
    by_id = {r["ID"]: r for r in rules}
    assert set(by_id) == {"logs-expiry", "shipyard-backups-roster-prod"}
    ours = by_id["shipyard-backups-roster-prod"]
    assert ours["Expiration"]["Days"] == 30
    assert ours["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert by_id["logs-expiry"]["Expiration"]["Days"] == 7
    assert bed.cache_dir.stat().st_mode & 0o777 == 0o700
    assert bed.objects() == []


def test_client_host_backs_up_and_restores(make_bed, roster_db: str, bucket: str,
                                           tls_pg: PgCluster) -> None:
    bed = make_bed(roster_db, bucket, client="host")
    manifest = create(bed)
    assert str(manifest["client"]).startswith("host")
    target = tls_pg.create_database("hostclient")
    done = bed.inv("backup.restore", f"--env={ENV}", "--date=latest",
                   f"--target-url={target}?sslmode=require")
    assert done.returncode == 0, done.stderr
    assert fingerprint(target) == fingerprint(bed.url())


def test_multipart_upload_above_the_threshold(make_bed, roster_db: str, bucket: str) -> None:
    bed = make_bed(roster_db, bucket, multipart_threshold_mb=5, part_size_mb=5,
                   upload_concurrency=2)
    manifest = create(bed)
    head = bed.s3.client().head_object(Bucket=bed.bucket, Key=str(manifest["dump_key"]))
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ServerSideEncryption"] == "AES256"
    data = bed.s3.client().get_object(Bucket=bed.bucket, Key=str(manifest["dump_key"]))
    assert hashlib.sha256(data["Body"].read()).hexdigest() == manifest["sha256"]


def test_newest_complete_age(bed: BackupBed) -> None:
    from fabfile.backup import newest_complete_age

    cfg = bed.config()
    assert newest_complete_age(cfg) is None
    create(bed)
    age = newest_complete_age(cfg)
    assert age is not None and timedelta(0) <= age < timedelta(minutes=5)


def test_cache_keeps_the_newest_keep_local(make_bed, roster_db: str, bucket: str) -> None:
    bed = make_bed(roster_db, bucket, keep_local=1)
    first = create(bed)
    second = create(bed)
    assert [p.name for p in bed.cache_dir.glob("*.dump.zst")] == [
        f"{second['backup_id']}.dump.zst"]
    assert first["backup_id"] != second["backup_id"]
    assert Path(bed.cache_dir).exists()


def test_a_routine_backup_is_one_round_trip(bed: BackupBed) -> None:
    from fabfile.backup.dump import create as create_backup

    cfg = bed.config()
    assert create_backup(cfg).round_trips == 2
    assert create_backup(cfg).round_trips == 1


def test_a_restore_over_the_live_database_holds_the_deploy_lock(
        bed: BackupBed, tls_pg: PgCluster, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    (app_dir / "lock").mkdir(parents=True)
    holder = {"who": "ci@runner", "when": "2026-11-26T02:00:00Z", "command": "deploy",
              "version": "v9", "pid": 4242}
    (app_dir / "lock" / "holder.json").write_text(json.dumps(holder) + "\n")
    env_file = bed.root / f"{ENV}.yaml"
    env_file.write_text(env_file.read_text() + f"deploy:\n  app_dir: {app_dir}\n")
    manifest = create(bed)
    tls_pg.psql("DELETE FROM assignments WHERE id % 2 = 0", bed.database)

    refused = bed.inv("backup.restore", f"--env={ENV}", "--date=latest", "--yes")
    assert refused.returncode == 75
    message = only_error(refused.stderr)
    assert "is locked by ci@runner" in message and "deploy of v9" in message
    assert "Nothing was restored" in message and "The database" in refused.stderr
    assert fingerprint(bed.url())["assignments"][0] == 80_000
    assert json.loads((app_dir / "lock" / "holder.json").read_text()) == holder
    assert len(manifests(bed)) == 1

    (app_dir / "lock" / "holder.json").unlink()
    (app_dir / "lock").rmdir()
    done = bed.inv("backup.restore", f"--env={ENV}", f"--date={manifest['backup_id']}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert fingerprint(bed.url())["assignments"][0] == 160_000
    assert not (app_dir / "lock").exists()
    [audit] = [json.loads(line) for line in (app_dir / "audit.log").read_text().splitlines()]
    assert (audit["action"], audit["result"], audit["version"]) == (
        "backup.restore", "success", manifest["backup_id"])
