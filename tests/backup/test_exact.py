"""A restore leaves exactly the backup, on a managed-like PostgreSQL: the app's role owns its
objects but is neither superuser nor the database's owner (it has CREATE on the database
and on schema public, as a managed database grants). Through the real `inv` CLI, the sshd
host, the session's PostgreSQL (TLS) and moto's S3.

The story the issue tells: last night's backup, then a release whose migration added a
table (and more), then a restore of the backup; the migration must then run again cleanly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.backup.conftest import ENV, BackupBed
from tests.backup.managed import MIGRATION_V2, SOMETHING_ELSE, Managed, managed_database
from tests.backup.roster import fingerprint
from tests.backup.test_roundtrip import create, only_error
from tests.support.postgres import PgCluster

pytestmark = pytest.mark.testbed

@pytest.fixture
def managed(tls_pg: PgCluster) -> Iterator[Managed]:
    yield from managed_database(tls_pg)


@pytest.fixture
def app_bed(make_bed: Callable[..., BackupBed], managed: Managed, bucket: str) -> BackupBed:
    bed = make_bed(managed.database, bucket)
    bed.environ["BT_DATABASE_URL"] = managed.url() + "?sslmode=require"
    return bed


def listed(bed: BackupBed) -> list[tuple[str, str]]:
    rows = json.loads(bed.inv("backup.list", f"--env={ENV}", "--json").stdout)
    return [(r["id"], r["label"]) for r in rows]


def test_a_restore_after_a_later_migration_leaves_exactly_the_backup(
        app_bed: BackupBed, managed: Managed) -> None:
    before = managed.state()
    backup = create(app_bed, "--label=nightly")
    managed.run(MIGRATION_V2)
    managed.run("DELETE FROM audit.events WHERE person_id > 400; "
                "DELETE FROM people WHERE id > 400")
    migrated = managed.inventory()
    assert len(set(migrated) - set(before[0])) > 10

    done = app_bed.inv("backup.restore", f"--env={ENV}", f"--date={backup['backup_id']}",
                       "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the restore drops what the backup does not hold: " in done.stdout
    assert "table public.teams" in done.stdout and "schema reporting" in done.stdout
    assert managed.state() == before
    pre = next(i for i, label in listed(app_bed) if label == "pre-restore")
    assert f"what it held before is backup {pre} (pre-restore)" in done.stdout

    managed.run(MIGRATION_V2)
    assert managed.inventory() == migrated

    again = app_bed.inv("backup.restore", f"--env={ENV}", f"--date={pre}", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert managed.inventory() == migrated
    assert fingerprint(managed.url())["people"][0] == 400


def test_what_the_role_may_not_drop_is_refused_before_anything_changes(
        app_bed: BackupBed, managed: Managed) -> None:
    backup = create(app_bed)
    other = f"other_{uuid.uuid4().hex[:6]}"
    managed.pg.psql(f'CREATE ROLE "{other}"')
    managed.pg.psql(f'GRANT CREATE ON SCHEMA public TO "{other}"', managed.database)
    managed.pg.psql(f'SET ROLE "{other}"; CREATE TABLE public.intruder (x int); '
                    f'GRANT SELECT ON public.intruder TO "{managed.role}"', managed.database)
    managed.run("DELETE FROM audit.events; DELETE FROM people WHERE id > 100")
    before = managed.state()
    try:
        refused = app_bed.inv("backup.restore", f"--env={ENV}", "--date=latest", "--yes")
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert (f"table public.intruder belongs to role {other}, so {managed.role} cannot drop "
                f"it: have {other} (or a superuser) run `ALTER TABLE public.intruder OWNER TO "
                f"{managed.role};`") in refused.stderr
        assert "nothing was changed" in refused.stderr
        assert managed.state() == before
        assert listed(app_bed) == [(str(backup["backup_id"]), "")]

        managed.pg.psql(f'ALTER TABLE public.intruder OWNER TO "{managed.role}"',
                        managed.database)
        done = app_bed.inv("backup.restore", f"--env={ENV}", "--date=latest", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "public.intruder" not in "\n".join(managed.inventory())
    finally:
        managed.pg.psql(f'DROP OWNED BY "{other}" CASCADE', managed.database)
        managed.pg.psql(f'DROP ROLE "{other}"')


def test_a_target_url_is_restored_exactly_and_refused_while_it_holds_objects(
        app_bed: BackupBed, managed: Managed) -> None:
    before = managed.state()
    create(app_bed)
    fresh = managed.empty_database()
    done = app_bed.inv("backup.restore", f"--env={ENV}",
                       f"--target-url={managed.url(database=fresh)}?sslmode=require")
    assert done.returncode == 0, done.stdout + done.stderr
    assert managed.state(fresh) == before

    busy = managed.empty_database()
    managed.run(SOMETHING_ELSE, database=busy)
    held = managed.inventory(busy)
    url = f"--target-url={managed.url(database=busy)}?sslmode=require"
    refused = app_bed.inv("backup.restore", f"--env={ENV}", url)
    assert refused.returncode == 1
    message = only_error(refused.stderr)
    assert "already holds 6 objects (" in message and "table public.teams" in message
    assert "schema reporting" in message and "pass --replace" in message
    assert managed.inventory(busy) == held

    replaced = app_bed.inv("backup.restore", f"--env={ENV}", url, "--replace", "--yes")
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert managed.state(busy) == before
