"""`inv db.migrate-from-sqlite --env` and `inv db.cutover` end to end: the real CLI over real
SSH (the test bed's sshd) and Docker, the fake app deployed on a real SQLite file (the bench
roster, small) behind the Traefik stand-in, the test bed's PostgreSQL speaking TLS as the
managed database, and load through the front the whole time.

The fake app does not read its database; what is checked is what the tool owns: the snapshot
and migration (row counts here, checksums by the engine), the maintenance page served
instead of connection errors, the switch (env file, marker, new containers) and the way
back when the migration fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from tests.backup.roster import bench_sqlite
from tests.deploy.stack import APP, DOMAIN, Stack, output
from tests.support.docker import DockerEngine, docker
from tests.support.front import Front
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator, Result
from tests.support.postgres import PgCluster
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

THROTTLE = 1.0
PAGE_TITLE = "Down for maintenance"


@dataclass
class Bed:
    stack: Stack
    front: Front
    sqlite: Path
    url: str

    def inv(self, *args: str, env: str = "e2e") -> tuple[int, str]:
        proc = self.stack.inv(*args, env=env, extra_env={"E2E_DATABASE_URL": self.url})
        return proc.returncode, output(proc)

    def app_env(self) -> str:
        return (self.stack.app_dir / "current" / "app.env").read_text()

    def web(self) -> list[dict[str, str]]:
        return self.stack.containers()

    def maintenance(self) -> list[str]:
        return docker("ps", "-aq", "--filter", f"name=^{self.stack.project}-maintenance$").split()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts_sqlite(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]  # noqa: S608
                for n in names}
    finally:
        conn.close()


def counts_pg(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        found = {}
        for t in tables:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
            found[t] = row.fetchone()[0]  # type: ignore[index]
        return found


@pytest.fixture
def bed(ssh_host: SshHost, test_images: ImageSet, docker_engine: DockerEngine,
        tls_pg: PgCluster, tmp_path: Path, make_front: Callable[..., Front]) -> Iterator[Bed]:
    """v1 deployed on SQLite (2 replicas, no migrations) behind a started front."""
    pg = tls_pg
    url = pg.create_database("cut") + "?sslmode=require"
    stack = Stack.create(tmp_path, ssh_host)
    data = tmp_path / "data"
    data.mkdir()
    sqlite = data / "roster.db"
    shutil.copyfile(bench_sqlite(0.05), sqlite)
    try:
        assert stack.inv("setup").returncode == 0
        front = make_front(project=stack.project, throttle=THROTTLE, network=stack.network)
        stack.write_env(overrides={
            "app": {"migrate_command": []},
            "database": {"backend": "sqlite", "sqlite_path": str(sqlite)},
            "maintenance": {"image": f"{APP}:maintenance", "command": [], "port": 8000,
                            "ready_timeout": 30},
            "deploy": {"traefik_throttle": THROTTLE, "drain_margin": 0.5, "smoke": {
                "urls": [f"{front.url}/health"], "host_header": DOMAIN}}})
        b = Bed(stack, front, sqlite, url)
        code, text = b.inv("deploy", "--yes")
        assert code == 0, text
        front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
        yield b
    finally:
        stack.cleanup()
        docker("rm", "-f", f"{stack.project}-maintenance", check=False)
        pg.drop_database(url.removesuffix("?sslmode=require"))


def check_load(results: list[Result]) -> tuple[int, int]:
    """Every answer is the app's 200 or the maintenance page's 503; returns (200s, 503s)."""
    bad = [r for r in results if r.status not in (200, 503) or r.error]
    assert not bad, "\n".join(map(str, bad[:10]))
    pages = [r for r in results if r.status == 503]
    assert all(PAGE_TITLE in r.body for r in pages), pages[0].body if pages else ""
    return len(results) - len(pages), len(pages)


def test_migrate_with_env_then_cutover_under_load(bed: Bed) -> None:
    stack = bed.stack
    assert "DATABASE_URL='sqlite:////srv/sqlite/roster.db'" in bed.app_env()
    mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", bed.web()[0]["id"]))
    assert [(m["Source"], m["Destination"]) for m in mounts] == [
        (str(bed.sqlite.parent), "/srv/sqlite")]
    before = sha256(bed.sqlite)
    expected = counts_sqlite(bed.sqlite)

    code, text = bed.inv("db.migrate-from-sqlite", "--jobs=2")
    assert code == 0, text
    assert "online backup with python3" in text
    assert counts_pg(bed.url, list(expected)) == expected
    assert sha256(bed.sqlite) == before

    old_ids = {c["id"] for c in bed.web()}
    with LoadGenerator(f"{bed.front.url}/version", host=DOMAIN, rate=20, max_seconds=240) as load:
        code, text = bed.inv("db.cutover", "--yes", "--jobs=2", "--drop-existing")
        elapsed = load.now()
    assert code == 0, text
    ok, pages = check_load(load.results())
    print(f"cutover: {elapsed:.1f}s under load, {ok} answers 200, {pages} maintenance pages")
    assert pages > 0 and ok > 0
    assert "cutover of e2e done" in text

    assert f"DATABASE_URL='{bed.url}'" in bed.app_env()
    marker = stack.app_dir / "database-backend"
    assert marker.read_text() == "postgres\n"
    assert stat.S_IMODE(marker.stat().st_mode) == 0o644
    assert counts_pg(bed.url, list(expected)) == expected
    assert sha256(bed.sqlite) == before
    assert stack.all_serving(f"{APP}:v1") and not old_ids & {c["id"] for c in bed.web()}
    assert not bed.maintenance() and not stack.locked()
    assert [a["action"] for a in stack.audit()][-2:] == ["deploy", "cutover"]

    code, text = bed.inv("deploy", "--yes")
    assert code == 1
    assert "Cutover done: set database.backend: postgres in environments/e2e.yaml" in text
    switched = yaml.safe_load((stack.env_dir / "e2e.yaml").read_text())
    switched["database"]["backend"] = "postgres"
    (stack.env_dir / "e2epg.yaml").write_text(yaml.safe_dump(switched))
    code, text = bed.inv("rollback", "--yes", env="e2epg")
    assert code == 1
    assert "runs the app on SQLite, but this host was cut over to PostgreSQL" in text
    assert "DATABASE_URL='postgresql://" in bed.app_env()


def test_the_rehearsal_stops_a_doomed_cutover_before_the_downtime(bed: Bed) -> None:
    stack = bed.stack
    with psycopg.connect(bed.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE people (id bigint)")
    before = sha256(bed.sqlite)
    old_ids = {c["id"] for c in bed.web()}
    with LoadGenerator(f"{bed.front.url}/version", host=DOMAIN, rate=20, max_seconds=120) as load:
        code, text = bed.inv("db.cutover", "--yes", "--jobs=2")
    assert code == 1, text
    assert ("cutover failed: the rehearsal found a problem, so the site was not taken down: "
            "the target already holds people") in text
    assert "nothing was changed" in text and "Traceback" not in text
    ok, pages = check_load(load.results())
    assert pages == 0 and ok > 0
    assert {c["id"] for c in bed.web()} == old_ids and not bed.maintenance()
    assert not stack.locked() and not (stack.app_dir / "database-backend").exists()
    assert sha256(bed.sqlite) == before
    assert stack.audit()[-1]["action"] == "cutover" and stack.audit()[-1]["result"] == "failed"


def test_a_failed_cutover_puts_sqlite_back(bed: Bed) -> None:
    """The rehearsal passes; the real run fails after the page is up (DDL refused by an event
    trigger, which a dry run never meets), and everything is put back, the containers the
    deploy started beside the migration included."""
    stack = bed.stack
    with psycopg.connect(bed.url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'DDL refused by the test'; END $$")
        conn.execute("CREATE EVENT TRIGGER refuse_ddl ON ddl_command_start "
                     "EXECUTE FUNCTION refuse_ddl()")
    before = sha256(bed.sqlite)
    old_ids = {c["id"] for c in bed.web()}
    with LoadGenerator(f"{bed.front.url}/version", host=DOMAIN, rate=20, max_seconds=180) as load:
        code, text = bed.inv("db.cutover", "--yes", "--jobs=2")
    assert code == 1, text
    assert "rehearsal passed" in text
    assert "cutover failed: creating the schema failed" in text, text
    assert "DDL refused by the test" in text
    assert "the app is back on SQLite" in text
    assert "Traceback" not in text
    assert "held until ready" in text and "drain, stop 2 held new containers" in text, \
        "the deploy started beside the migration, and its held containers went with it"
    ok, pages = check_load(load.results())
    assert pages > 0 and ok > 0
    assert stack.all_serving(f"{APP}:v1") and {c["id"] for c in bed.web()} == old_ids
    assert not bed.maintenance() and not stack.locked()
    assert not (stack.app_dir / "database-backend").exists()
    assert "DATABASE_URL='sqlite:////srv/sqlite/roster.db'" in bed.app_env()
    assert sha256(bed.sqlite) == before
    bed.front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=10)
    assert stack.audit()[-1]["action"] == "cutover" and stack.audit()[-1]["result"] == "failed"
