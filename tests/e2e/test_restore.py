"""`inv backup.restore` over the live database of a running site, end to end: the real CLI
over real SSH (the test bed's sshd) and Docker, the fake app (v1, two replicas) behind the
Traefik stand-in, a managed-like PostgreSQL (the app's role is neither superuser nor
owner) speaking TLS, moto's S3, and load through the front the whole time.

What is checked is what the tool owns: no request fails (every answer is the app's or the
maintenance page's 503), the database ends up exactly the backup, the web containers are
replaced by fresh ones of the current release, the page and the lock are gone and the run
is in the audit log; and when the restore fails after the page is up, the message says
what the database holds and the command that brings the pre-restore backup back, which
works. The test prints the maintenance window in seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backup.managed import MIGRATION_V2, Managed, managed_database
from tests.deploy.stack import APP, DOMAIN, Stack, output
from tests.e2e.test_cutover import PAGE_TITLE, check_load
from tests.support.docker import DockerEngine, docker
from tests.support.front import Front
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator, Result
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

THROTTLE = 1.0


@dataclass
class Site:
    stack: Stack
    front: Front
    db: Managed
    s3: S3Server
    bucket: str

    @property
    def secrets(self) -> dict[str, str]:
        return {"E2E_DATABASE_URL": self.db.url() + "?sslmode=require",
                "E2E_BACKUP_KEY": self.s3.access_key, "E2E_BACKUP_SECRET": self.s3.secret_key}

    def inv(self, *args: str) -> tuple[int, str]:
        proc = self.stack.inv(*args, extra_env=self.secrets)
        return proc.returncode, output(proc)

    def backups(self) -> list[dict[str, str]]:
        proc = self.stack.inv("backup.list", "--json", extra_env=self.secrets)
        assert proc.returncode == 0, output(proc)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def maintenance(self) -> list[str]:
        return docker("ps", "-aq", "--filter", f"name=^{self.stack.project}-maintenance$").split()


@pytest.fixture
def site(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
         tls_pg: PgCluster, s3_server: S3Server, tmp_path: Path,
         make_front: Callable[..., Front]) -> Iterator[Site]:
    """v1 deployed (2 replicas) behind a started front, on a managed-like database."""
    bucket = f"rs-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    databases = managed_database(tls_pg)
    db = next(databases)
    stack = Stack.create(tmp_path, ssh_host)
    try:
        assert stack.inv("setup").returncode == 0
        front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
        stack.write_env(overrides={
            "app": {"migrate_command": []},
            "maintenance": {"image": f"{APP}:maintenance", "command": [], "port": 8000,
                            "ready_timeout": 30},
            "backup": {"bucket": bucket, "prefix": "roster/e2e",
                       "endpoint_url": s3_server.endpoint_url, "region": s3_server.region,
                       "access_key_id": {"secret": "E2E_BACKUP_KEY"},
                       "secret_access_key": {"secret": "E2E_BACKUP_SECRET"},
                       "cache_dir": str(tmp_path / "cache"), "restore_jobs": 3},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 0.5, "smoke": {
                "urls": [f"{front.url}/health"], "host_header": DOMAIN}}})
        s = Site(stack, front, db, s3_server, bucket)
        code, text = s.inv("deploy", "--yes")
        assert code == 0, text
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        yield s
    finally:
        stack.cleanup()
        docker("rm", "-f", f"{stack.project}-maintenance", check=False)
        next(databases, None)


def window(results: list[Result]) -> float:
    """Seconds from the first maintenance page served to the last."""
    pages = [r.started for r in results if r.status == 503]
    return max(pages) - min(pages) if pages else 0.0


def test_restore_under_load_behind_the_maintenance_page(site: Site) -> None:
    stack = site.stack
    before = site.db.state()
    code, text = site.inv("backup.create", "--label=nightly")
    assert code == 0, text
    backup = site.backups()[0]["id"]
    site.db.run(MIGRATION_V2)
    migrated = site.db.state()
    old_ids = {c["id"] for c in stack.containers()}

    with LoadGenerator(f"{site.front.url}/version", host=DOMAIN, rate=20,
                       max_seconds=240) as load:
        code, text = site.inv("backup.restore", f"--date={backup}", "--yes")
        elapsed = load.now()
    assert code == 0, text
    ok, pages = check_load(load.results())
    seconds = window(load.results())
    print(f"restore over the live site: {elapsed:.1f}s under load, {ok} answers 200, {pages} "
          f"maintenance pages, maintenance window {seconds:.1f}s")
    assert pages > 0 and ok > 0
    assert "the site was in maintenance for" in text and "Traceback" not in text

    assert site.db.state() == before
    assert stack.all_serving(f"{APP}:v1") and not old_ids & {c["id"] for c in stack.containers()}
    assert not site.maintenance() and not stack.locked()
    assert stack.audit()[-1]["action"] == "backup.restore"
    assert stack.audit()[-1]["result"] == "success"
    labels = {b["label"]: b["status"] for b in site.backups()}
    assert labels == {"nightly": "complete", "pre-restore": "complete"}

    site.db.run(MIGRATION_V2)
    assert site.db.state()[0] == migrated[0]


def test_a_restore_failing_after_the_page_says_how_to_go_back(site: Site) -> None:
    """The app's role may open two connections at once: enough for the preflight, the
    pre-restore backup and the drop, not for `pg_restore -j3` (restore_jobs: 3), whose
    workers fail to connect once the database was emptied and the tables created."""
    stack = site.stack
    code, text = site.inv("backup.create")
    assert code == 0, text
    backup = site.backups()[0]["id"]
    site.db.run(MIGRATION_V2)
    migrated = site.db.state()
    site.db.pg.psql(f'ALTER ROLE "{site.db.role}" CONNECTION LIMIT 2')
    with LoadGenerator(f"{site.front.url}/version", host=DOMAIN, rate=20,
                       max_seconds=240) as load:
        code, text = site.inv("backup.restore", f"--date={backup}", "--yes")
        failed_at = load.now()
        time.sleep(2 * THROTTLE + 1)
        after = load.results(since=failed_at)
    assert code == 1, text
    assert "Traceback" not in text and "too many connections" in text
    check_load(load.results())
    assert after and all(r.status == 503 and PAGE_TITLE in r.body for r in after)
    pre = next(b["id"] for b in site.backups() if b["label"] == "pre-restore")
    assert ("is only partly restored: what it held was dropped, then the restore of backup "
            f"{backup} stopped halfway") in text
    assert "The site stays behind the maintenance page" in text
    assert (f"`inv backup.restore --env=e2e --date={pre} --yes` brings back the pre-restore "
            f"backup {pre}") in text
    assert site.maintenance() and not stack.containers() and not stack.locked()
    assert stack.audit()[-1]["result"] == "failed"

    site.db.pg.psql(f'ALTER ROLE "{site.db.role}" CONNECTION LIMIT -1')
    with LoadGenerator(f"{site.front.url}/version", host=DOMAIN, rate=20,
                       max_seconds=240) as load:
        code, text = site.inv("backup.restore", f"--date={pre}", "--yes")
    assert code == 0, text
    check_load(load.results())
    assert site.db.state() == migrated
    assert stack.all_serving(f"{APP}:v1") and not site.maintenance() and not stack.locked()
