"""The task killed with SIGKILL at each point the issue lists (mid-dump, mid-upload with one
PUT and with parts, mid-restore after the pre-restore backup), through the real `inv` CLI on
the sshd host, PostgreSQL and moto's S3. Each time: the host side stops and cleans up by
itself (its script notices that its task is gone), no incomplete backup is listed as
complete or restored, nothing complete is lost, a lock left behind shows in `lock.status`
and goes with `lock.release`, and the next run converges.

Each kill happens at a point the test holds the run in, not after a guessed delay: a table
lock the dump waits for, an S3 front that takes an upload and never answers, an advisory
lock the restore's DDL waits for (an event trigger).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.backup.conftest import ENV, BackupBed
from tests.backup.faults import CuttingProxy
from tests.backup.managed import Managed, managed_database
from tests.backup.test_roundtrip import create
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server

pytestmark = pytest.mark.testbed


def wait_for(what: str, check: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def kill(proc: subprocess.Popen[str]) -> None:
    assert proc.poll() is None, proc.communicate()[0]
    proc.kill()
    proc.wait(10)


def cache_is_clean(bed: BackupBed) -> bool:
    """Nothing but finished dumps: no work directory of a run (hence no partial file)."""
    return all(p.name.endswith(".dump.zst") for p in bed.cache_dir.iterdir())


def complete(bed: BackupBed) -> list[str]:
    rows = json.loads(bed.inv("backup.list", f"--env={ENV}", "--json").stdout)
    return [r["id"] for r in rows if r["status"] == "complete"]


def intact(bed: BackupBed, manifest: dict[str, object]) -> bool:
    body = bed.s3.client().get_object(Bucket=bed.bucket, Key=str(manifest["dump_key"]))
    return hashlib.sha256(body["Body"].read()).hexdigest() == manifest["sha256"]


def converges(bed: BackupBed, good: dict[str, object]) -> None:
    """The next backup succeeds, the earlier one is intact, the aborted one left nothing
    listed; its unfinished multipart upload (if any) goes with the next prune."""
    again = create(bed)
    assert complete(bed) == [again["backup_id"], good["backup_id"]]
    assert intact(bed, good) and cache_is_clean(bed)
    pruned = bed.inv("backup.prune", f"--env={ENV}")
    assert pruned.returncode == 0, pruned.stderr
    assert not bed.s3.client().list_multipart_uploads(Bucket=bed.bucket).get("Uploads")
    assert complete(bed) == [again["backup_id"], good["backup_id"]]


def backends(bed: BackupBed, condition: str) -> int:
    """How many sessions on the bed's database meet `condition` (SQL on pg_stat_activity)."""
    query = sql.SQL("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND {}")
    with psycopg.connect(bed.pg.url()) as conn:
        row = conn.execute(query.format(sql.SQL(condition)), (bed.database,)).fetchone()
    assert row is not None
    return int(row[0])


def test_killed_mid_dump(bed: BackupBed) -> None:
    good = create(bed)
    with psycopg.connect(bed.url()) as blocker:
        blocker.execute("LOCK TABLE assignments IN ACCESS EXCLUSIVE MODE")
        proc = bed.popen("backup.create", f"--env={ENV}")
        wait_for("the dump to wait for the table lock",
                 lambda: backends(bed, "wait_event_type = 'Lock'") > 0)
        kill(proc)
        wait_for("the host to stop the dump and clean up", lambda: cache_is_clean(bed), 20)
    wait_for("the dump's sessions to end",
             lambda: backends(bed, "application_name IN ('pg_dump', 'psql')") == 0)
    assert complete(bed) == [good["backup_id"]]
    converges(bed, good)


@pytest.mark.parametrize("part", [0, 2], ids=["single-put", "multipart"])
def test_killed_mid_upload(make_bed: Callable[..., BackupBed], roster_db: str, bucket: str,
                           s3_server: S3Server, part: int) -> None:
    direct = make_bed(roster_db, bucket)
    good = create(direct)
    upstream = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    with CuttingProxy(upstream, part, hold=True) as proxy:
        sizes = {"multipart_threshold_mb": 5, "part_size_mb": 5} if part else {}
        bed = make_bed(roster_db, bucket, endpoint_url=proxy.endpoint_url,
                       cache_dir=direct.cache_dir, **sizes)
        proc = bed.popen("backup.create", f"--env={ENV}")
        assert proxy.stalled.wait(120), proc.communicate()[0] if proc.poll() else ""
        kill(proc)
        assert proxy.gone.wait(20), "the host kept the upload open after its task died"
        wait_for("the host to clean up", lambda: cache_is_clean(direct), 20)
    assert complete(direct) == [good["backup_id"]]
    dump_key = str(good["dump_key"])
    assert set(direct.objects()) == {dump_key, dump_key.replace(".dump.zst", ".manifest.json")}
    converges(direct, good)


@pytest.fixture
def managed(tls_pg: PgCluster) -> Iterator[Managed]:
    yield from managed_database(tls_pg)


def test_killed_mid_restore_after_the_pre_restore_backup(
        make_bed: Callable[..., BackupBed], managed: Managed, bucket: str,
        tmp_path: Path) -> None:
    bed = make_bed(managed.database, bucket)
    bed.environ["BT_DATABASE_URL"] = managed.url() + "?sslmode=require"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    env_file = bed.root / f"{ENV}.yaml"
    env_file.write_text(env_file.read_text() + f"deploy:\n  app_dir: {app_dir}\n")
    before = managed.state()
    good = create(bed)
    managed.run("DELETE FROM audit.events; DELETE FROM people WHERE id > 10")
    # The restore's ALTER TABLE statements (identity, keys) wait for an advisory lock the test
    # holds: a function in a schema that is not the app's, called by an event trigger.
    managed.pg.psql(f"""
        CREATE SCHEMA hold;
        GRANT USAGE ON SCHEMA hold TO "{managed.role}";
        CREATE FUNCTION hold.wait() RETURNS event_trigger LANGUAGE plpgsql AS
          $$ BEGIN PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242); END $$;
        CREATE EVENT TRIGGER hold_restore ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
          EXECUTE FUNCTION hold.wait();""", managed.database)
    with psycopg.connect(managed.pg.url(managed.database), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(4242)")
        proc = bed.popen("backup.restore", f"--env={ENV}", f"--date={good['backup_id']}",
                         "--yes")
        wait_for("the restore to wait in its DDL",
                 lambda: backends(bed, "wait_event = 'advisory'") > 0, 180)
        assert len(complete(bed)) == 2
        kill(proc)
        wait_for("the host to stop the restore and clean up", lambda: cache_is_clean(bed), 20)
        holder.execute("SELECT pg_advisory_unlock(4242)")
        holder.execute("DROP EVENT TRIGGER hold_restore; DROP SCHEMA hold CASCADE")
    pre = next(i for i in complete(bed) if i != good["backup_id"])

    status = bed.inv("lock.status", f"--env={ENV}")
    assert status.returncode == 0, status.stderr
    assert "held" in status.stdout and f"backup.restore of {good['backup_id']}" in status.stdout
    refused = bed.inv("backup.restore", f"--env={ENV}", f"--date={good['backup_id']}", "--yes")
    assert refused.returncode == 75 and "backup.restore of" in refused.stderr
    released = bed.inv("lock.release", f"--env={ENV}", "--yes")
    assert released.returncode == 0, released.stdout + released.stderr
    assert not (app_dir / "lock").exists()

    done = bed.inv("backup.restore", f"--env={ENV}", f"--date={good['backup_id']}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert managed.state() == before
    assert pre in complete(bed) and good["backup_id"] in complete(bed)
    assert cache_is_clean(bed) and not (app_dir / "lock").exists()
