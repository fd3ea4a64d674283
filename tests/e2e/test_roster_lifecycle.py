"""The reference app's whole life, end to end, under load through the Traefik stand-in: the
roster app (FastAPI, SQLAlchemy, Alembic) on the sshd host with real Docker, a managed-like
PostgreSQL (TLS, an app role that is neither superuser nor owner, on another "machine": its
own network namespace) and moto's S3.

1. first deploy on SQLite: a generated roster.db (scale 1) on the host, adopted by the app's
   Alembic revision 0001 as the deploy's migration step;
2. `inv db.cutover --schema=existing`: the app's own Alembic schema made in PostgreSQL, the
   rows copied into it and verified (counts and checksums), the app serving from PostgreSQL;
3. a rolling deploy of the version with revision 0002 (a new column and an index);
4. `inv backup.create`, then `inv backup.restore` of it over the live database;
5. `inv rollback`.

No request fails, except the maintenance page's 503s while the cutover and the restore hold
the site; the test prints those windows in seconds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.backup.managed import Managed, managed_database
from tests.backup.roster import bench_sqlite
from tests.deploy.stack import APP, DOMAIN, Stack, output
from tests.support.docker import DockerEngine, docker
from tests.support.front import Front
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator, Result
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

THROTTLE = 1.0
RATE = 15.0
ROSTER = "shipyard-test/roster"
APP_UID = 10001
"""The roster image's user: it writes roster.db and its WAL beside it."""


@dataclass
class Life:
    stack: Stack
    front: Front
    db: Managed
    target: str
    s3: S3Server
    sqlite: Path

    @property
    def url(self) -> str:
        return self.db.url(database=self.target) + "?sslmode=require"

    def inv(self, *args: str, timeout: float = 900) -> tuple[int, str]:
        proc = self.stack.inv(*args, timeout=timeout, extra_env={
            "E2E_DATABASE_URL": self.url, "E2E_BACKUP_KEY": self.s3.access_key,
            "E2E_BACKUP_SECRET": self.s3.secret_key})
        return proc.returncode, output(proc)

    def env(self, backend: str, tag: str = "v1") -> None:
        self.stack.write_env(overrides={
            "app": {"image": ROSTER, "tag": tag,
                    "migrate_command": ["alembic", "upgrade", "head"],
                    "healthcheck": {"command": None, "timeout": 3, "start_period": 15},
                    "resources": {"cpus": 1.0, "memory": "256m"},
                    "env": {"WEB_CONCURRENCY": "1"}},
            "database": {"backend": backend, "sqlite_path": str(self.sqlite)},
            "maintenance": {"image": f"{APP}:maintenance", "command": [], "port": 8000,
                            "ready_timeout": 30},
            "backup": {"bucket": self.bucket, "prefix": "roster/life",
                       "endpoint_url": self.s3.endpoint_url, "region": self.s3.region,
                       "access_key_id": {"secret": "E2E_BACKUP_KEY"},
                       "secret_access_key": {"secret": "E2E_BACKUP_SECRET"},
                       "cache_dir": str(self.stack.root / "cache"), "restore_jobs": 2},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 0.5,
                       "verify": {"paths": ["/health", "/people?limit=1"]},
                       "smoke": {"urls": [f"{self.front.url}/health"], "host_header": DOMAIN}}})

    @property
    def bucket(self) -> str:
        return f"life-{self.stack.project}"

    def count(self, table: str) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608
            assert row is not None
            return int(row[0])

    def revision(self) -> str:
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            assert row is not None
            return str(row[0])


@pytest.fixture
def life(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
         managed_pg: PgCluster, s3_server: S3Server, tmp_path: Path,
         make_front: Callable[..., Front]) -> Iterator[Life]:
    databases = managed_database(managed_pg)
    db = next(databases)
    target = db.empty_database()
    stack = Stack.create(tmp_path, ssh_host)
    data = tmp_path / "data"
    data.mkdir()
    sqlite = data / "roster.db"
    shutil.copyfile(bench_sqlite(1), sqlite)
    for path in (data, sqlite):
        path.chmod(0o770 if path.is_dir() else 0o660)
        shutil.chown(path, APP_UID, APP_UID)
    try:
        assert stack.inv("setup").returncode == 0
        front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
        life = Life(stack, front, db, target, s3_server, sqlite)
        s3_server.client().create_bucket(Bucket=life.bucket)
        life.env("sqlite")
        yield life
    finally:
        stack.cleanup()
        docker("rm", "-f", f"{stack.project}-maintenance", check=False)
        next(databases, None)


def page_window(results: list[Result]) -> float:
    """Seconds from the first maintenance page served to the last (0 when none was)."""
    pages = [r.started for r in results if r.status == 503]
    return max(pages) - min(pages) if pages else 0.0


def test_sqlite_deploy_cutover_migration_backup_restore_rollback(life: Life) -> None:
    stack = life.stack
    code, text = life.inv("deploy", "--yes")
    assert code == 0, text
    assert "migrate: alembic upgrade head" in text
    life.front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
    people = 20_000

    with LoadGenerator(f"{life.front.url}/people?limit=1", host=DOMAIN, rate=RATE,
                       max_seconds=900) as load:
        t0 = load.now()
        code, text = life.inv("db.cutover", "--yes", "--schema=existing")
        assert code == 0, text
        cutover = (t0, load.now())
        assert "target schema: alembic upgrade head on PostgreSQL" in text
        assert "maintenance window:" in text
        assert life.count("people") == people and life.revision() == "0001"
        life.env("postgres")

        code, text = life.inv("deploy", "--yes", "--version=v2")
        assert code == 0, text
        assert life.revision() == "0002"
        assert stack.all_serving(f"{ROSTER}:v2")

        code, text = life.inv("backup.create", "--label=life")
        assert code == 0, text
        backups = json.loads(stack.inv("backup.list", "--json", extra_env={
            "E2E_DATABASE_URL": life.url, "E2E_BACKUP_KEY": life.s3.access_key,
            "E2E_BACKUP_SECRET": life.s3.secret_key}).stdout)
        with psycopg.connect(life.url, autocommit=True) as conn:
            conn.execute("DELETE FROM assignments WHERE id % 2 = 0")
        t1 = load.now()
        code, text = life.inv("backup.restore", f"--date={backups[0]['id']}", "--yes")
        assert code == 0, text
        restore = (t1, load.now())
        assert life.count("assignments") == 160_000 and life.revision() == "0002"

        code, text = life.inv("rollback", "--yes")
        assert code == 0, text
        assert stack.all_serving(f"{ROSTER}:v1")
        elapsed = load.now()

    results = load.results()
    bad = [r for r in results if not r.ok and not (r.status == 503 and any(
        start <= r.started <= end for start, end in (cutover, restore)))]
    print(f"{elapsed:.0f}s of load on the API: {load.summary()}; maintenance page: cutover "
          f"{page_window(load.results(*cutover)):.1f}s, restore "
          f"{page_window(load.results(*restore)):.1f}s")
    assert not bad, load.summary()
    assert len(results) >= RATE * elapsed * 0.9, load.summary()
