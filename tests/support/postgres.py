"""A throwaway PostgreSQL cluster for one test session (TESTBED.md).

`initdb` and `pg_ctl` run as the `postgres` user when the suite runs as root; the cluster
listens on 127.0.0.1 at a free port with trust authentication and is removed at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .net import free_port, wait_for_port

PG_BIN_CANDIDATES = tuple(f"/usr/lib/postgresql/{major}/bin" for major in (15, 16, 17))


def pg_bin() -> Path:
    """Directory holding initdb/pg_ctl; PATH first, then Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for candidate in PG_BIN_CANDIDATES:
        if Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    raise RuntimeError("PostgreSQL server binaries not found: run .ci/install-system.sh")


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PgCluster:
    """A running cluster; `url()` gives a libpq URL for one of its databases."""

    datadir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    ns: netns.Namespace | None = None
    """The network namespace it listens in, when it plays a database on another machine."""

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.url(dbname),
             "-c", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database with a unique name and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                          "stop"]),
            check=False, capture_output=True,
        )
        if self.ns is not None:
            self.ns.delete()


def _self_signed_certificate(datadir: Path) -> None:
    """server.crt/server.key for 127.0.0.1 and localhost, owned like the data directory."""
    crt, key = datadir / "server.crt", datadir / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )
    stat = datadir.stat()
    for path in (crt, key):
        os.chown(path, stat.st_uid, stat.st_gid)
        path.chmod(0o600)


def start_cluster(base: Path | None = None, *, tls: bool = False,
                  remote: bool = False, durable: bool = False) -> PgCluster:
    """initdb + pg_ctl start in a fresh directory; returns once the server accepts connections.

    With `tls`, the server also speaks TLS with a self-signed certificate, as a managed
    database does (clients use `sslmode=require`). With `remote`, it listens in a network
    namespace of its own (`netns.py`), at an address both this machine and its containers
    reach (through the host's routing, as they reach a managed database), with trust for
    every client. Without `durable` (tests), fsync, synchronous_commit and full_page_writes
    are off; with it they keep PostgreSQL's defaults, as a managed database runs (benchmarks).
    """
    root = Path(tempfile.mkdtemp(prefix="pgtest-", dir=base))
    datadir = root / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chown(datadir, pw.pw_uid, pw.pw_gid)
    binary = pg_bin()
    subprocess.run(
        _as_postgres([str(binary / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C.UTF-8"]),
        check=True, capture_output=True,
    )
    ns = netns.create("sypg") if remote else None
    host = ns.address if ns else "127.0.0.1"
    port = 5432 if ns else free_port()
    opts = f"-p {port} -k {datadir} -c listen_addresses={host} -c max_connections=100"
    if not durable:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if ns is not None:
        with (datadir / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")
    if tls:
        _self_signed_certificate(datadir)
        opts += " -c ssl=on"
    start = _as_postgres([str(binary / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                          str(datadir / "server.log"), "-w", "start"])
    try:
        subprocess.run(ns.argv(*start) if ns else start, check=True, capture_output=True)
        wait_for_port(port, host)
    except BaseException:
        if ns is not None:
            ns.delete()
        raise
    return PgCluster(datadir=datadir, port=port, host=host, ns=ns)


def cluster_fixture(*, tls: bool = False, remote: bool = False) -> Iterator[PgCluster]:
    cluster = start_cluster(tls=tls, remote=remote)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)
