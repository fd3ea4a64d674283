"""Fixtures of the backup tests: the roster loaded once per session as a template database,
the session cluster made to speak TLS (managed databases must: `sslmode=require`), a fresh
bucket per test and an environment tree whose one host is the test-bed sshd."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.backup.roster import bench_sqlite, load_roster
from tests.helpers import DUMMY_SECRETS, INV, PROJECT_ROOT, env_tree, run_inv
from tests.support.images import ImageSet
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server
from tests.support.sshd import SshHost

ENV = "bt"
TEMPLATE = "roster_scale1_tpl"


@pytest.fixture(scope="session")
def roster_template(tls_pg: PgCluster) -> dict[str, int]:
    """The bench roster at scale 1 in a template database; returns its row counts."""
    tls_pg.psql(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
    tls_pg.psql(f'CREATE DATABASE "{TEMPLATE}"')
    return load_roster(bench_sqlite(1), tls_pg.url(TEMPLATE))


@pytest.fixture
def roster_db(tls_pg: PgCluster, roster_template: dict[str, int]) -> Iterator[str]:
    """A fresh copy of the roster (name of the database); dropped after the test."""
    name = f"roster_{uuid.uuid4().hex[:8]}"
    tls_pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    yield name
    tls_pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"bk-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@dataclass
class BackupBed:
    """An environment `bt` whose host is the sshd, whose database is a roster copy."""

    root: Path
    environ: dict[str, str]
    cache_dir: Path
    pg: PgCluster
    s3: S3Server
    bucket: str
    database: str

    def inv(self, *args: str, input_text: str | None = None,
            extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_inv(*args, env_dir=self.root, extra_env={**self.environ, **(extra or {})},
                       input_text=input_text, timeout=300)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`inv ARGS...` in the background (to kill it), output on its stdout."""
        environ = {k: v for k, v in os.environ.items() if k not in DUMMY_SECRETS}
        environ.update({"NO_COLOR": "1", "COLUMNS": "200",
                        "DEPLOY_ENVIRONMENTS_DIR": str(self.root), **self.environ})
        return subprocess.Popen([INV, *args], cwd=PROJECT_ROOT, env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def config(self) -> Any:
        from fabfile.config import load_config
        return load_config(ENV, root=self.root, environ=self.environ)

    def url(self, database: str | None = None, *, tls: bool = True) -> str:
        base = self.pg.url(database or self.database)
        return f"{base}?sslmode=require" if tls else base

    def objects(self) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


def bed_yaml(ssh_host: SshHost, s3: S3Server, bucket: str, cache_dir: Path,
             **backup: Any) -> dict[str, Any]:
    return {
        "hosts": [{"address": ssh_host.address, "port": ssh_host.port, "user": ssh_host.user,
                   "key_file": str(ssh_host.key_file), "known_hosts": str(ssh_host.known_hosts)}],
        "traefik": {"enabled": False},
        "database": {"url": {"secret": "BT_DATABASE_URL"}},
        "backup": {"bucket": bucket, "prefix": "roster/prod", "endpoint_url": s3.endpoint_url,
                   "region": s3.region, "sse": "AES256",
                   "access_key_id": {"secret": "BT_BACKUP_ACCESS_KEY_ID"},
                   "secret_access_key": {"secret": "BT_BACKUP_SECRET_ACCESS_KEY"},
                   "cache_dir": str(cache_dir), "keep_local": 3, **backup},
    }


@pytest.fixture
def make_bed(tmp_path: Path, tls_pg: PgCluster, s3_server: S3Server, ssh_host: SshHost,
             test_images: ImageSet) -> Callable[..., BackupBed]:
    """Factory: `make_bed(database, bucket, **backup_overrides)`."""
    count = 0

    def make(database: str, bucket_name: str, *, cache_dir: Path | None = None,
             **backup: Any) -> BackupBed:
        nonlocal count
        count += 1
        cache = cache_dir or tmp_path / f"cache{count}"
        data = bed_yaml(ssh_host, s3_server, bucket_name, cache, **backup)
        root = env_tree(tmp_path / f"envs{count}", {ENV: data})
        environ = {
            "BT_DATABASE_URL": f"{tls_pg.url(database)}?sslmode=require",
            "BT_BACKUP_ACCESS_KEY_ID": s3_server.access_key,
            "BT_BACKUP_SECRET_ACCESS_KEY": s3_server.secret_key,
        }
        return BackupBed(root, environ, cache, tls_pg, s3_server, bucket_name, database)

    return make


@pytest.fixture
def bed(make_bed: Callable[..., BackupBed], roster_db: str, bucket: str) -> BackupBed:
    return make_bed(roster_db, bucket)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
