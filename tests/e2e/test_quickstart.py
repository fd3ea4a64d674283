"""docs/quickstart.md, run: every `sh` block of the page, in order, exactly as written but for
the substitutions in `text_mapping`, in one shell session (the working directory and the
activated virtualenv carry over, each prompt is answered `y` on a terminal).

The test bed plays what the page asks the reader to have: the sshd host is the VPS (it runs
this machine's Docker Engine), the test registry is GHCR, moto is the S3 bucket, a TLS
PostgreSQL in its own network namespace is the managed database, a TLS server with a
certificate from a test CA stands in for Traefik's, and git repositories made here are the
tool's and the app's clone URLs. The environment the reader writes (`cp
docs/prod.example.yaml environments/prod.yaml`, then edit) gets the same placeholder
mapping plus `TESTBED`, the settings a machine without internet needs.

Before "Coming from SQLite" the test does what that section asks the reader to have done:
the app deployed on SQLite (the template's two commented lines uncommented) with an empty
PostgreSQL database as the target; the rows the app holds there must arrive.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.checks.tls import make_ca, make_leaf
from tests.checks.tlsserve import TlsServer, tls_server
from tests.helpers import DUMMY_SECRETS, PROJECT_ROOT, deep_merge
from tests.support.docker import DockerEngine, docker
from tests.support.heal import stop_watcher
from tests.support.images import APP_REPO, PYTHON_TAG, ROSTER_DIR, ImageSet
from tests.support.postgres import PgCluster
from tests.support.registry import Registry
from tests.support.s3 import S3Server
from tests.support.sshd import SshHost

pytestmark = pytest.mark.e2e

DOC = PROJECT_ROOT / "docs" / "quickstart.md"
TEMPLATE = PROJECT_ROOT / "docs" / "prod.example.yaml"
DOMAIN = "roster.example.com"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
WRITE_ENV = "cp docs/prod.example.yaml environments/prod.yaml"
SQLITE_SECTION = "inv db.migrate-from-sqlite"


def sh_blocks(text: str) -> list[str]:
    """Every fenced block of the page; each must be `sh` (nothing shown goes untested)."""
    blocks = BLOCK.findall(text)
    assert blocks, "no command blocks found"
    langs = {lang for lang, _ in blocks}
    assert langs == {"sh"}, f"only sh blocks may appear in the quickstart, found {langs}"
    return [body for _, body in blocks]


def substitute(text: str, mapping: dict[str, str]) -> str:
    for placeholder, value in mapping.items():
        text = text.replace(placeholder, value)
    return text


@dataclass
class Bed:
    """The test bed's parts and the values that replace the page's placeholders."""

    work: Path
    ssh: SshHost
    registry: Registry
    s3: S3Server
    db: PgCluster
    tls: TlsServer
    ca_file: Path
    tool_repo: Path
    app_repo: Path
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    database_url: str = ""
    bucket: str = ""
    databases: list[str] = field(default_factory=list)

    def new_database(self, prefix: str) -> str:
        """A fresh database of the managed cluster (dropped after the test), TLS required."""
        url = self.db.create_database(prefix)
        self.databases.append(url)
        return url + "?sslmode=require"

    @property
    def project(self) -> str:
        return f"qs{self.uid}"

    @property
    def image(self) -> str:
        return f"{self.registry.server}/roster-{self.project}"

    @property
    def host_dir(self) -> Path:
        return self.work / "host"

    def text_mapping(self) -> dict[str, str]:
        """Placeholder -> test bed, applied to the blocks and to the environment file."""
        return {
            "https://github.com/acme/shipyard-tasks.git": str(self.tool_repo),
            "https://github.com/acme/roster-api.git": str(self.app_repo),
            "ssh-keyscan -t ed25519 203.0.113.10":
                f"ssh-keyscan -t ed25519 -p {self.ssh.port} {self.ssh.address}",
            "~/.ssh": str(self.work / "ssh"),
            "postgresql://roster:CHANGE-ME@db.example.com:5432/roster?sslmode=require":
                self.database_url,
            "CHANGE-ME-KEY-ID": self.s3.access_key,
            "CHANGE-ME-SECRET": self.s3.secret_key,
            "CHANGE-ME-TOKEN": self.registry.password,
            # Traefik cannot run here: its hosts serve no certificate, the TLS server does.
            "inv certs.check --env=prod": f"inv certs.check --env=prod "
                                          f"--connect=127.0.0.1:{self.tls.port}",
        }

    def env_mapping(self) -> dict[str, str]:
        """The reader's edits of the template (its CHANGE values), for the test bed."""
        return {
            "project: roster": f"project: {self.project}",
            "ghcr.io/acme/roster-api": self.image,
            "203.0.113.10": self.ssh.address,
            "port: 22": f"port: {self.ssh.port}",
            "user: deploy": f"user: {self.ssh.user}",
            "/srv/roster-data/roster.db": str(self.work / "data" / "roster.db"),
            "/srv/roster": str(self.host_dir / "app"),
            "/var/backups/roster": str(self.host_dir / "backups"),
            "example-roster-backups": self.bucket,
            "region: eu-central-1": f"region: {self.s3.region}",
            "server: ghcr.io": f"server: {self.registry.server}",
            "username: acme-deploy": f"username: {self.registry.username}",
            "~/.ssh": str(self.work / "ssh"),
        }

    def testbed(self) -> dict[str, Any]:
        """What a machine without internet needs on top of the reader's values."""
        return {
            "app": {"healthcheck": {"start_period": 10, "timeout": 3},
                    "env": {"WEB_CONCURRENCY": "1"},
                    "build": {"args": {"BASE_IMAGE": PYTHON_TAG},      # no Docker Hub
                              "secrets": {"pip_ca": CA_BUNDLE}}},      # PyPI's TLS re-signed
            "deploy": {"network": f"{self.project}-net"},             # shared Docker Engine
            "traefik": {"enabled": False},                            # no Traefik image
            "registry": {"ca_file": str(self.registry.ca_file)},
            "backup": {"endpoint_url": self.s3.endpoint_url},
            "checks": {"ca_file": str(self.ca_file), "db_client_image": "postgres:15"},
            "maintenance": {"image": f"{APP_REPO}:maintenance", "command": [], "port": 8000,
                            "ready_timeout": 30},
        }


class Session:
    """One shell session in `work`: each block runs in bash with `set -e`, starting where the
    previous one ended (directory, activated virtualenv), stdin a terminal answering `y`."""

    def __init__(self, work: Path) -> None:
        self.state = work / "session"
        self.state.mkdir()
        (self.state / "cwd").write_text(str(work))
        (self.state / "venv").write_text("")
        path = [p for p in os.environ["PATH"].split(":") if "/.venv/" not in p]
        self.environ = {k: v for k, v in os.environ.items()
                        if k not in DUMMY_SECRETS and k not in ("VIRTUAL_ENV",
                                                               "DEPLOY_ENVIRONMENTS_DIR")}
        self.environ.update(PATH=":".join(path), NO_COLOR="1", COLUMNS="200")

    def run(self, block: str, timeout: float = 900) -> str:
        state = self.state
        script = (f'cd "$(cat {state}/cwd)"\n'
                  f'if [ -s {state}/venv ]; then . "$(cat {state}/venv)/bin/activate"; fi\n'
                  f"trap 'pwd > {state}/cwd; printf %s \"${{VIRTUAL_ENV:-}}\" > {state}/venv' "
                  "EXIT\nset -e -o pipefail\n" + block)
        master, slave = os.openpty()
        try:
            os.write(master, b"y\n" * 4)
            proc = subprocess.run(["bash", "-c", script], stdin=slave, capture_output=True,
                                  text=True, env=self.environ, timeout=timeout, check=False)
        finally:
            os.close(slave)
            os.close(master)
        text = f"{proc.stdout}\n{proc.stderr}"
        assert proc.returncode == 0, f"block failed (exit {proc.returncode}):\n{block}\n{text}"
        assert "Traceback" not in text, text
        return text

    @property
    def cwd(self) -> Path:
        return Path((self.state / "cwd").read_text().strip())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=qs", "-c",
                           "user.email=qs@example.com", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def snapshot_repo(source: Path, dest: Path, files: list[str]) -> Path:
    """A git repository at `dest` holding `files` of `source` as they are now, committed."""
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "snapshot")
    return dest


@pytest.fixture
def bed(ssh_host: SshHost, registry: Registry, s3_server: S3Server, managed_pg: PgCluster,
        test_images: ImageSet, docker_engine: DockerEngine, tmp_path: Path) -> Iterator[Bed]:
    tracked = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "-co",
                              "--exclude-standard"], check=True, capture_output=True,
                             text=True).stdout.split()
    tool = snapshot_repo(PROJECT_ROOT, tmp_path / "origin" / "shipyard-tasks",
                         [f for f in tracked if (PROJECT_ROOT / f).is_file()])
    app_files = [str(p.relative_to(ROSTER_DIR)) for p in ROSTER_DIR.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and "_cache" not in str(p)]
    app = snapshot_repo(ROSTER_DIR, tmp_path / "origin" / "roster-api", app_files)
    pki = tmp_path / "pki"
    ca = make_ca(pki)
    leaf = make_leaf(pki, ca, [DOMAIN], days=90, stem="site")
    (tmp_path / "ssh").mkdir()
    shutil.copyfile(ssh_host.key_file, tmp_path / "ssh" / "roster_deploy")
    (tmp_path / "ssh" / "roster_deploy").chmod(0o600)
    (tmp_path / "data").mkdir(mode=0o777)
    (tmp_path / "data").chmod(0o777)
    with tls_server(leaf, {}) as tls:
        b = Bed(work=tmp_path, ssh=ssh_host, registry=registry, s3=s3_server, db=managed_pg,
                tls=tls, ca_file=ca.pem, tool_repo=tool, app_repo=app)
        b.database_url = b.new_database("qs")
        b.bucket = f"qs-{b.uid}"
        s3_server.client().create_bucket(Bucket=b.bucket)
        try:
            yield b
        finally:
            cleanup(b)


def cleanup(b: Bed) -> None:
    stop_watcher(b.host_dir / "app")
    ids = docker("ps", "-aq", "--filter",
                 f"label=com.docker.compose.project={b.project}").split()
    ids += docker("ps", "-aq", "--filter", f"name=^{b.project}-maintenance$").split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    docker("network", "rm", f"{b.project}-net", check=False)
    for ref in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                      b.image).split():
        docker("rmi", "-f", ref, check=False)
    shutil.rmtree(b.host_dir, ignore_errors=True)
    for url in b.databases:
        b.db.drop_database(url)


def write_env(b: Bed, clone: Path) -> None:
    """The reader's edit of the copied template: their values, plus the test bed's needs."""
    path = clone / "environments" / "prod.yaml"
    assert path.read_text() == TEMPLATE.read_text()
    text = substitute(path.read_text(), b.env_mapping())
    data = deep_merge(yaml.safe_load(text), b.testbed())
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def prepare_sqlite(b: Bed, session: Session, sha: str) -> str:
    """What "Coming from SQLite" starts from: the app deployed on SQLite (the template's
    commented lines, uncommented) holding rows and an empty database to move to; the YAML's
    `app.tag` stays the template's, so the cutover must keep the version the host serves."""
    clone = session.cwd
    template = TEMPLATE.read_text()
    for line in ("  # backend: sqlite\n", "  # sqlite_path: /srv/roster-data/roster.db\n"):
        assert line in template, f"the template no longer shows {line.strip()!r}"
    path = clone / "environments" / "prod.yaml"
    data = yaml.safe_load(path.read_text())
    data["database"].update(backend="sqlite",
                            sqlite_path=substitute("/srv/roster-data/roster.db",
                                                   b.env_mapping()))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    target = b.new_database("qsnew")
    dotenv = clone / ".env.prod"
    dotenv.write_text(dotenv.read_text().replace(b.database_url, target))
    session.run(f"inv deploy --env=prod --yes --version={sha}")
    sqlite = b.work / "data" / "roster.db"
    with sqlite3.connect(sqlite) as conn:
        conn.execute("INSERT INTO organizations (id, name, created_at) "
                     "VALUES ('acme', 'Acme', '2024-05-01 10:00:00')")
        conn.executemany("INSERT INTO people (id, org_id, name, email, created_at) "
                         "VALUES (?, 'acme', ?, ?, '2024-05-01 10:00:00')",
                         [(i, f"person {i}", f"p{i}@example.com") for i in range(1, 6)])
    return target


def test_the_quickstart_runs_as_written(bed: Bed) -> None:
    doc = DOC.read_text()
    blocks = sh_blocks(doc)
    template = TEMPLATE.read_text()
    for placeholder in bed.text_mapping():
        assert placeholder in doc, f"the mapping's {placeholder!r} is not in the quickstart"
    for placeholder in bed.env_mapping():
        assert placeholder in template, f"the mapping's {placeholder!r} is not in the template"
    assert WRITE_ENV in doc and SQLITE_SECTION in doc

    session = Session(bed.work)
    outputs: dict[str, str] = {}
    sha = ""
    target = ""
    started = time.monotonic()
    for block in blocks:
        if SQLITE_SECTION in block:
            target = prepare_sqlite(bed, session, sha)
        text = substitute(block, bed.text_mapping())
        outputs[block] = session.run(text)
        if WRITE_ENV in block:
            write_env(bed, session.cwd)
        if "inv build" in block:
            sha = git(session.cwd / "app", "rev-parse", "HEAD")
        print(f"[{time.monotonic() - started:6.1f}s] {block.splitlines()[0]}")

    def out(fragment: str) -> str:
        return next(text for block, text in outputs.items() if fragment in block)

    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(bed.ssh.known_hosts)], check=True,
                                 capture_output=True, text=True).stdout.split()[1]
    assert fingerprint in out("ssh-keygen -lf"), "ssh-keyscan did not reach the test host"
    assert "***" in out("inv config.show") and bed.registry.password not in out("config.show")
    assert f"built {bed.image}:{sha}" in out("inv build")
    assert sha in bed.registry.tags(bed.image.split("/", 1)[1])
    deployed = out("inv deploy")
    assert "[y/N]" in deployed, "prod did not ask before deploying"
    assert f"pull {bed.image}:{sha}" in deployed or f"{bed.image}:{sha}" in deployed
    assert DOMAIN in out("inv certs.check")
    assert "first" in out("inv backup.list")
    assert "[y/N]" in out("inv db.cutover")
    with psycopg.connect(target) as conn:
        row = conn.execute("SELECT count(*) FROM people").fetchone()
    assert row is not None and row[0] == 5, "the SQLite rows did not reach PostgreSQL"
    app_env = (bed.host_dir / "app" / "current" / "app.env").read_text()
    assert "DATABASE_URL='postgresql" in app_env, app_env
