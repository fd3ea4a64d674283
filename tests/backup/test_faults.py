"""Each fault the issue lists, through the real `inv` CLI on the test bed: one clear message,
a non-zero exit, no backup recorded that is not complete, no good backup touched."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from tests.backup.conftest import ENV, BackupBed
from tests.backup.faults import CuttingProxy, old_client_bin_dir, old_client_image
from tests.backup.roster import fingerprint
from tests.backup.test_roundtrip import create, only_error
from tests.support.docker import docker
from tests.support.images import POSTGRES_TAG
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server, start_s3_server

pytestmark = pytest.mark.testbed


def nothing_recorded(bed: BackupBed, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """No object beyond `keep`, no unfinished multipart upload, `list` shows no new backup."""
    assert set(bed.objects()) == set(keep)
    uploads = bed.s3.client().list_multipart_uploads(Bucket=bed.bucket).get("Uploads", [])
    assert uploads == []
    listed = bed.inv("backup.list", f"--env={ENV}", "--json")
    assert listed.returncode == 0, listed.stderr
    complete = [r["id"] for r in json.loads(listed.stdout) if r["status"] == "complete"]
    assert len(complete) == len({k for k in keep if k.endswith(".manifest.json")})


class Hook(http.server.BaseHTTPRequestHandler):
    posts: list[dict[str, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.posts.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local stand-in for Slack's incoming webhook: (URL, the payloads it received)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    Hook.posts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Hook.posts
    server.shutdown()
    server.server_close()


def test_wrong_bucket(make_bed: Callable[..., BackupBed], roster_db: str) -> None:
    bed = make_bed(roster_db, "no-such-bucket-here")
    result = bed.inv("backup.create", f"--env={ENV}")
    assert result.returncode != 0
    assert "bucket no-such-bucket-here does not exist at http://127.0.0.1:" in only_error(
        result.stderr)
    assert not list(bed.cache_dir.glob("*.dump.zst"))


@pytest.fixture
def strict_s3() -> Iterator[tuple[S3Server, str, str]]:
    """A separate moto server that checks signatures: (server, key id, secret) of a real user."""
    server = start_s3_server(separate_process=True)
    iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="backup")
    iam.put_user_policy(UserName="backup", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    access = iam.create_access_key(UserName="backup")["AccessKey"]
    server.client().create_bucket(Bucket="strict")
    httpx.post(f"{server.endpoint_url}/moto-api/reset-auth", content=b"0").raise_for_status()
    yield server, access["AccessKeyId"], access["SecretAccessKey"]
    server.stop()


def test_wrong_credentials(make_bed: Callable[..., BackupBed], roster_db: str,
                           strict_s3: tuple[S3Server, str, str]) -> None:
    server, key_id, _ = strict_s3
    bed = make_bed(roster_db, "strict", endpoint_url=server.endpoint_url)
    for wrong in ({"BT_BACKUP_ACCESS_KEY_ID": key_id, "BT_BACKUP_SECRET_ACCESS_KEY": "nope"},
                  {"BT_BACKUP_ACCESS_KEY_ID": "AKIANOSUCHKEY", "BT_BACKUP_SECRET_ACCESS_KEY": "x"}):
        result = bed.inv("backup.create", f"--env={ENV}", extra=wrong)
        assert result.returncode != 0
        message = only_error(result.stderr)
        assert "S3 refused the request while listing s3://strict/roster/prod/" in message
        assert "check BT_BACKUP_ACCESS_KEY_ID / BT_BACKUP_SECRET_ACCESS_KEY" in message
        assert "nope" not in result.stderr + result.stdout


def test_unreachable_database(make_bed: Callable[..., BackupBed], bucket: str,
                              slack: tuple[str, list[dict[str, str]]]) -> None:
    hook, posts = slack
    bed = make_bed("roster", bucket)
    bed.environ["BT_DATABASE_URL"] = "postgresql://app:pw@127.0.0.1:9/app?sslmode=require"
    (bed.root / "bt.yaml").write_text((bed.root / "bt.yaml").read_text() + (
        "notifications:\n  slack_webhook: {secret: BT_SLACK}\n"))
    bed.environ["BT_SLACK"] = hook
    result = bed.inv("backup.create", f"--env={ENV}")
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert "cannot connect to the database 127.0.0.1:9/app from root@127.0.0.1:" in message
    assert "Connection refused" in message
    assert [p["text"].split("] ", 1)[1][:29] for p in posts] == ["backup failed: cannot connect"]
    nothing_recorded(bed)


def test_full_disk_on_the_host(make_bed: Callable[..., BackupBed], roster_db: str, bucket: str,
                               small_disk: Callable[[str], Path]) -> None:
    cache = small_disk("4m") / "cache"
    bed = make_bed(roster_db, bucket, cache_dir=cache)
    result = bed.inv("backup.create", f"--env={ENV}")
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert f"the disk holding {cache} on root@127.0.0.1:" in message
    assert "is full" in message and "Nothing was recorded as a backup" in message
    nothing_recorded(bed)
    assert [p.name for p in cache.iterdir()] == []


@pytest.mark.parametrize("part", [0, 2], ids=["single-put", "multipart"])
def test_upload_cut_halfway_is_never_a_backup(make_bed: Callable[..., BackupBed],
                                              roster_db: str, bucket: str,
                                              s3_server: S3Server, part: int) -> None:
    direct = make_bed(roster_db, bucket)
    good = create(direct)
    keep = set(direct.objects())
    upstream = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    with CuttingProxy(upstream, part) as proxy:
        sizes = {"multipart_threshold_mb": 5, "part_size_mb": 5} if part else {}
        bed = make_bed(roster_db, bucket, endpoint_url=proxy.endpoint_url,
                       cache_dir=direct.cache_dir, **sizes)
        result = bed.inv("backup.create", f"--env={ENV}")
        assert proxy.cuts >= 1
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert "the upload from root@127.0.0.1:" in message
    assert "The partial upload was aborted and no backup was recorded" in message
    nothing_recorded(direct, keep)
    latest = direct.inv("backup.list", f"--env={ENV}", "--json")
    assert [r["id"] for r in json.loads(latest.stdout)] == [good["backup_id"]]


@pytest.fixture
def backed_up(bed: BackupBed) -> tuple[BackupBed, dict[str, object]]:
    return bed, create(bed)


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def test_corrupt_s3_copy_is_refused(backed_up: tuple[BackupBed, dict[str, object]],
                                    pg_db: str) -> None:
    bed, manifest = backed_up
    client = bed.s3.client()
    dump_key = str(manifest["dump_key"])
    data = client.get_object(Bucket=bed.bucket, Key=dump_key)["Body"].read()
    client.put_object(Bucket=bed.bucket, Key=dump_key, Body=_flip(data))
    cached = bed.cache_dir / f"{manifest['backup_id']}.dump.zst"
    cached.unlink()
    result = bed.inv("backup.restore", f"--env={ENV}", f"--target-url={pg_db}")
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert f"the S3 copy s3://{bed.bucket}/{dump_key} is corrupt" in message
    assert "the host has no cached copy" in message
    assert "The database was not touched" in message
    assert fingerprint(pg_db) == {}
    assert not cached.exists()

    cached.write_bytes(_flip(data[:-10]))
    result = bed.inv("backup.restore", f"--env={ENV}", f"--target-url={pg_db}")
    assert "the host's cached copy is corrupt too" in only_error(result.stderr)
    assert fingerprint(pg_db) == {}


def test_corrupt_cache_falls_back_to_s3(backed_up: tuple[BackupBed, dict[str, object]],
                                        tls_pg: PgCluster) -> None:
    bed, manifest = backed_up
    cached = bed.cache_dir / f"{manifest['backup_id']}.dump.zst"
    good = cached.read_bytes()
    cached.write_bytes(_flip(good))
    target = tls_pg.create_database("fallback")
    result = bed.inv("backup.restore", f"--env={ENV}", f"--target-url={target}?sslmode=require")
    assert result.returncode == 0, result.stderr
    assert "had the wrong checksum; it was replaced by the S3 copy" in result.stdout
    assert "from the S3 copy" in result.stdout
    assert fingerprint(target) == fingerprint(bed.url())
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == manifest["sha256"]
    tls_pg.drop_database(target)


def test_missing_manifest(backed_up: tuple[BackupBed, dict[str, object]], pg_db: str) -> None:
    bed, manifest = backed_up
    backup_id = str(manifest["backup_id"])
    bed.s3.client().delete_object(Bucket=bed.bucket,
                                  Key=str(manifest["dump_key"]).replace(".dump.zst",
                                                                        ".manifest.json"))
    for date in (backup_id, "latest"):
        result = bed.inv("backup.restore", f"--env={ENV}", f"--date={date}",
                         f"--target-url={pg_db}")
        assert result.returncode != 0
    assert (f"backup {backup_id} is incomplete (no manifest): it is not a complete backup and "
            "cannot be restored") in only_error(
        bed.inv("backup.restore", f"--env={ENV}", f"--date={backup_id}").stderr)
    assert "there is no complete backup yet" in only_error(result.stderr)
    listed = json.loads(bed.inv("backup.list", f"--env={ENV}", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(backup_id, "incomplete (no manifest)")]
    assert fingerprint(pg_db) == {}


def test_unknown_and_impossible_dates(backed_up: tuple[BackupBed, dict[str, object]]) -> None:
    bed, manifest = backed_up
    backup_id = str(manifest["backup_id"])
    day = f"{backup_id[:4]}-{backup_id[4:6]}-{backup_id[6:8]}"
    cases = {
        "2020-01-01": f"no complete backup on 2020-01-01; the nearest dates with one: {day}",
        "2026-13-45": "--date=2026-13-45 is not a valid date (month must be in 1..12)",
        "20200101T000000Z": f"there is no backup with id 20200101T000000Z; the newest is "
                            f"{backup_id}",
        "last-tuesday": "--date=last-tuesday is not understood",
    }
    for date, says in cases.items():
        for task in (("backup.restore", "--yes"), ("backup.verify",)):
            result = bed.inv(*task, f"--env={ENV}", f"--date={date}")
            assert result.returncode != 0
            assert says in only_error(result.stderr)


def test_old_docker_client_is_refused(make_bed: Callable[..., BackupBed], roster_db: str,
                                      bucket: str, tmp_path: Path) -> None:
    bed = make_bed(roster_db, bucket, client_image=old_client_image(tmp_path))
    result = bed.inv("backup.create", f"--env={ENV}")
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert ("pg_dump 14.11 on root@127.0.0.1:" in message
            and "is older than the database server (PostgreSQL 15)" in message)
    assert "set backup.client_image to a PostgreSQL 15 image" in message
    nothing_recorded(bed)


def test_old_host_client_is_refused(make_bed: Callable[..., BackupBed], roster_db: str,
                                    bucket: str, tmp_path: Path) -> None:
    bed = make_bed(roster_db, bucket, client="host",
                   client_bin_dir=str(old_client_bin_dir(tmp_path)))
    result = bed.inv("backup.create", f"--env={ENV}")
    assert result.returncode != 0
    message = only_error(result.stderr)
    assert "pg_dump 14.11 on root@127.0.0.1:" in message
    assert ("install postgresql-client-15 on root@127.0.0.1:" in message
            and "set backup.client_bin_dir: /usr/lib/postgresql/15/bin" in message)
    nothing_recorded(bed)


def test_old_client_after_a_good_backup_is_refused_too(make_bed: Callable[..., BackupBed],
                                                       roster_db: str, bucket: str,
                                                       tmp_path: Path) -> None:
    """A routine backup trusts the last manifest's server version and skips the facts; the
    dump script checks pg_dump against the server itself. Here the image behind the same
    tag turns into an older client between two backups."""
    repo = f"shipyard-test/pgx-{uuid.uuid4().hex[:8]}"
    docker("tag", POSTGRES_TAG, f"{repo}:15")
    try:
        bed = make_bed(roster_db, bucket, client_image=f"{repo}:{{major}}")
        good = create(bed)
        assert good["client"] == f"docker {repo}:15"
        docker("tag", old_client_image(tmp_path), f"{repo}:15")
        result = bed.inv("backup.create", f"--env={ENV}")
    finally:
        docker("rmi", f"{repo}:15", check=False)
    assert result.returncode != 0
    assert "is older than the database server (PostgreSQL 15)" in only_error(result.stderr)
    assert "the server's version changed since the last backup" in result.stdout
    dump_key = str(good["dump_key"])
    nothing_recorded(bed, {dump_key, dump_key.replace(".dump.zst", ".manifest.json")})
