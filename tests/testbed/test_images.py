"""The locally built images: idempotent builds, and postgres:15 behaving like the official one."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from tests.support.docker import (
    TEST_LABEL,
    container_port,
    docker,
    unique_name,
)
from tests.support.images import ImageSet, ensure_images, image_labels

pytestmark = pytest.mark.testbed


def wait_ready(container: str, timeout: float = 60.0) -> None:
    """Until the server accepts TCP connections (the first start runs initdb first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["docker", "exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"],
            capture_output=True, check=False,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise TimeoutError(docker("logs", container))


def test_ensure_images_is_fast_when_current(test_images: ImageSet) -> None:
    started = time.monotonic()
    assert ensure_images() == test_images
    assert time.monotonic() - started < 3
    tags = [test_images.app_v1, test_images.app_v2, test_images.app_broken,
            test_images.app_slow, test_images.postgres]
    labels = image_labels(*tags)
    assert sorted(labels) == sorted(tags) and all(labels.values())


def test_app_image_has_the_healthcheck_tools(test_images: ImageSet) -> None:
    out = docker("run", "--rm", test_images.app_v1, "sh", "-c",
                 "for t in sh wget test sleep cat date touch rm; do command -v $t; done")
    assert len(out.splitlines()) == 8


def test_postgres_image_initialises_and_checks_passwords(
    test_images: ImageSet, owner: str
) -> None:
    name = unique_name("pg")
    docker("run", "-d", "--name", name, "--label", f"{TEST_LABEL}={owner}",
           "-e", "POSTGRES_PASSWORD=s3cret", "-e", "POSTGRES_USER=app", "-e", "POSTGRES_DB=appdb",
           "-p", "127.0.0.1::5432", test_images.postgres)
    wait_ready(name)
    port = container_port(name, 5432)
    url = f"postgresql://app:s3cret@127.0.0.1:{port}/appdb"

    out = subprocess.run(["psql", url, "-XAtc", "select current_user, current_database()"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "app|appdb"
    with psycopg.connect(url) as conn:
        row = conn.execute("select current_setting('server_version_num')::int").fetchone()
        assert row is not None and 150000 <= row[0] < 160000
        conn.execute("create table t (id int primary key); insert into t values (1), (2)")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://app:wrong@127.0.0.1:{port}/appdb").close()

    started = time.monotonic()
    docker("stop", "-t", "30", name)
    assert time.monotonic() - started < 5
    docker("start", name)
    wait_ready(name)
    port = container_port(name, 5432)
    with psycopg.connect(f"postgresql://app:s3cret@127.0.0.1:{port}/appdb") as conn:
        assert conn.execute("select count(*) from t").fetchone() == (2,)


def test_postgres_image_is_a_client_for_another_container(
    test_images: ImageSet, owner: str
) -> None:
    network = unique_name("net")
    docker("network", "create", "--label", f"{TEST_LABEL}={owner}", network)
    server = unique_name("db")
    docker("run", "-d", "--name", server, "--network", network, "--label", f"{TEST_LABEL}={owner}",
           "-e", "POSTGRES_PASSWORD=pw", test_images.postgres)
    wait_ready(server)
    docker("exec", server, "psql", "-U", "postgres", "-Xqc",
           "create table items (id int primary key, name text); insert into items values (1, 'a')")

    client = ["run", "--rm", "--network", network, "--label", f"{TEST_LABEL}={owner}",
              "-e", "PGPASSWORD=pw", test_images.postgres]
    script = (f"pg_dump -h {server} -U postgres -Fc -d postgres | zstd -q -c > /tmp/d.zst"
              " && zstd -q -dc /tmp/d.zst | pg_restore -l | grep -c 'TABLE DATA'")
    assert docker(*client, "sh", "-c", script) == "1"
    assert docker(*client, "pg_isready", "-h", server).endswith("accepting connections")
    assert docker(*client, "pg_dump", "--version").startswith("pg_dump (PostgreSQL) 15.")
