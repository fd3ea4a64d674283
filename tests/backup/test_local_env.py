"""The `local` environment's shape: no SSH (the local transport), the database a `db`
service on the stack's internal network, which the client container joins."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fabfile import ENVIRONMENTS_DIR
from tests.helpers import run_inv
from tests.support.docker import TEST_LABEL, docker, remove_labelled
from tests.support.images import ImageSet
from tests.support.s3 import S3Server

pytestmark = pytest.mark.testbed


@pytest.fixture
def stack_db(test_images: ImageSet) -> Iterator[tuple[str, str]]:
    """A `db` service as Compose would run it: (project, container) on `<project>_backend`."""
    project = f"bk{uuid.uuid4().hex[:8]}"
    docker("network", "create", "--internal", "--label", f"{TEST_LABEL}={project}",
           f"{project}_backend")
    container = docker("run", "-d", "--label", f"{TEST_LABEL}={project}",
                       "--network", f"{project}_backend", "--network-alias", "db",
                       "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=pw-local-1",
                       "-e", "POSTGRES_DB=roster", test_images.postgres)
    try:
        for _ in range(120):
            if docker("exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "app",
                      "-d", "roster", check=False) == "" and _ready(container):
                break
            time.sleep(0.5)
        yield project, container
    finally:
        remove_labelled(project)


def _ready(container: str) -> bool:
    return docker("exec", container, "psql", "-U", "app", "-d", "roster", "-Atc", "SELECT 1",
                  check=False) == "1"


def sql(container: str, statement: str) -> str:
    return docker("exec", container, "psql", "-X", "-U", "app", "-d", "roster", "-Atc",
                  statement)


def test_local_env_backs_up_and_restores_the_stack_db(stack_db: tuple[str, str], tmp_path: Path,
                                                      s3_server: S3Server) -> None:
    project, container = stack_db
    sql(container, "CREATE TABLE t (id int PRIMARY KEY, note text); "
                   "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
    digest = sql(container, "SELECT md5(string_agg(note, ',' ORDER BY id)) FROM t")
    bucket = f"bk-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    root = tmp_path / "environments"
    root.mkdir()
    (root / "base.yaml").write_text((ENVIRONMENTS_DIR / "base.yaml").read_text())
    local = yaml.safe_load((ENVIRONMENTS_DIR / "local.yaml").read_text())
    # its own app directory: the restore over the live database must not meet a `local`
    # stack that someone deployed on this machine
    local["deploy"] = {**local.get("deploy", {}), "app_dir": str(tmp_path / "app")}
    local.update(project=project, backup={
        "bucket": bucket, "prefix": "local", "endpoint_url": s3_server.endpoint_url,
        "access_key_id": {"secret": "LT_KEY"}, "secret_access_key": {"secret": "LT_SECRET"},
        "cache_dir": str(tmp_path / "cache")})
    (root / "lt.yaml").write_text(yaml.safe_dump(local))
    environ = {"LOCAL_POSTGRES_PASSWORD": "pw-local-1", "LT_KEY": s3_server.access_key,
               "LT_SECRET": s3_server.secret_key}

    made = run_inv("backup.create", "--env=lt", env_dir=root, extra_env=environ)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"backing up db:5432/roster via local to s3://{bucket}/local/" in made.stdout

    sql(container, "DELETE FROM t WHERE id > 10; CREATE TABLE extra (x int)")
    done = run_inv("backup.restore", "--env=lt", "--yes", env_dir=root, extra_env=environ)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sql(container, "SELECT count(*) FROM t") == "5000"
    assert sql(container, "SELECT md5(string_agg(note, ',' ORDER BY id)) FROM t") == digest

    first = made.stdout.split("ok backup ", 1)[1].split(":", 1)[0]
    checked = run_inv("backup.verify", "--env=lt", f"--date={first}", env_dir=root,
                      extra_env=environ)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 tables, 5,000 rows, as in its manifest" in checked.stdout
    latest = run_inv("backup.verify", "--env=lt", env_dir=root, extra_env=environ)
    assert "2 tables, 10 rows, as in its manifest" in latest.stdout
