"""What the backup sends to the host, as data: steps, their arguments and stdin, the parsers
of what the scripts print, and the sentences failures turn into."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fabfile.backup import plan
from fabfile.backup.plan import Client, DbTarget, HostFacts, Upload
from fabfile.config import load_config
from fabfile.errors import UserError
from tests.helpers import DUMMY_SECRETS, env_tree

URL = "postgresql://app:s3cr%27et%20pw@db.example:6432/roster?sslmode=require"
CLIENT = plan.SCRIPTS.body("client")


@pytest.mark.parametrize("name", plan.SCRIPTS.names)
def test_scripts_parse_in_posix_sh(name: str) -> None:
    """Debian's /bin/sh is dash: no bashisms, no pipefail (with their libraries prepended)."""
    proc = subprocess.run(["sh", "-n", "-c", plan.SCRIPTS.body(name)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_target_from_url_keeps_the_password_out_of_the_conninfo() -> None:
    target = plan.target_from_url(URL)
    assert target.password == "s3cr'et pw"
    assert target.conninfo == ("host='db.example' port='6432' dbname='roster' user='app' "
                               "connect_timeout='10' sslmode='require'")
    assert target.label == "db.example:6432/roster"
    assert target.with_db("scratch").dbname == "scratch"
    assert "s3cr" not in repr(target)


@pytest.mark.parametrize("bad", ["mysql://x@y/z", "postgresql:///nohost",
                                 "postgresql://u@h:notaport/db"])
def test_bad_target_urls(bad: str) -> None:
    with pytest.raises(UserError):
        plan.target_from_url(bad)


def test_quote_conninfo() -> None:
    assert plan.quote_conninfo("a b'c\\d") == "'a b\\'c\\\\d'"


def test_env_targets(tmp_path: Path) -> None:
    root = env_tree(tmp_path)
    prod = load_config("prod", root=root, environ=DUMMY_SECRETS)
    assert plan.env_target(prod).network == "host"
    assert plan.env_target(prod).password == "prod-pw"
    local = load_config("local", root=root, environ=DUMMY_SECRETS)
    target = plan.env_target(local)
    assert (target.network, target.get("host"), target.dbname, target.password) == (
        "roster_backend", "db", "roster", "local-pw-0000")
    with pytest.raises(UserError, match="client: host cannot reach"):
        Client("host").check_network(target)


def test_clients() -> None:
    docker = Client("docker")
    assert (docker.image_for(16), docker.where(16), docker.pinned) == (
        "postgres:16", "postgres:16", False)
    assert Client("docker", "registry.local/pg:{major}-alpine").image_for(15) == (
        "registry.local/pg:15-alpine")
    assert Client("docker", "postgres:14").pinned
    host = Client("host", bin_dir="/usr/lib/postgresql/16/bin")
    assert host.where(16) == "/usr/lib/postgresql/16/bin"
    assert host.describe(16) == "host /usr/lib/postgresql/16/bin"


TARGET = plan.target_from_url(URL)
UPLOAD = Upload(put_url="https://s3/put?sig=PUTSIG", put_headers=(
    "x-amz-server-side-encryption: AES256",), part_urls=("https://s3/p1?sig=P1",
                                                         "https://s3/p2?sig=P2"),
    threshold=64 * plan.MIB, part_size=16 * plan.MIB, concurrency=4)


def test_facts_step() -> None:
    step = plan.facts_step("/var/backups/roster", Client("docker", "pg:{major}-alpine"), TARGET,
                           create_cache=True)
    assert step.argv[:3] == ("sh", "-c", plan.SCRIPTS.body("facts"))
    assert step.argv[4:] == (CLIENT, "/var/backups/roster", "docker", "pg:", "-alpine",
                             "host", TARGET.conninfo, "0", "1")
    assert step.stdin == b"s3cr'et pw\n"


def test_create_step_sends_secrets_on_stdin_only() -> None:
    step = plan.create_step("/c", "20261126T020000Z", Client("docker"), 15, TARGET, UPLOAD, 7,
                            protect="20261120T020000Z")
    assert step.argv[:3] == ("sh", "-c", plan.SCRIPTS.body("create"))
    assert step.argv[4:] == (CLIENT, plan.SCRIPTS.body("part"), "/c", "20261126T020000Z",
                             "docker", "postgres:15", "host", TARGET.conninfo,
                             str(64 * plan.MIB), str(16 * plan.MIB), "4", "7",
                             "x-amz-server-side-encryption: AES256", "20261120T020000Z")
    assert step.stdin == (b"s3cr'et pw\nhttps://s3/put?sig=PUTSIG\nhttps://s3/p1?sig=P1\n"
                          b"https://s3/p2?sig=P2\n")
    assert not any(secret in arg for arg in step.argv
                   for secret in ("sig=PUTSIG", "sig=P1", "sig=P2", "s3cr'et"))


def test_part_size_must_suit_s3() -> None:
    with pytest.raises(ValueError):
        plan.create_step("/c", "x", Client("docker"), 15, TARGET,
                         Upload("u", (), (), 1, 3 * plan.MIB, 1), 7)


def test_restore_check_and_verify_steps() -> None:
    step = plan.restore_step("/c", "ID", Client("host"), 15, TARGET, "f" * 64, "https://get",
                             jobs=0, mode="exact")
    assert step.argv[4:] == (CLIENT, "/c", "ID", "host", "", "host", TARGET.conninfo,
                             "f" * 64, "0", "restore", "exact", "", TARGET.conninfo, "", "")
    assert step.stdin == b"s3cr'et pw\nhttps://get\n"
    step = plan.restore_step("/c", "ID", Client("host"), 15, TARGET, "f" * 64, "https://get",
                             jobs=0, mode="empty", check=True)
    assert step.argv[13:15] == ("check", "empty") and step.name.startswith("check the dump")
    scratch = TARGET.with_db("verify_x")
    step = plan.restore_step("/c", "ID", Client("docker"), 15, scratch, "f" * 64, "u", jobs=2,
                             mode="empty", scratch="verify_x", admin=TARGET)
    assert step.argv[-7:] == ("2", "restore", "empty", "verify_x", TARGET.conninfo, "", "")
    assert "dbname='verify_x'" in step.argv[10]
    lock = plan.HostLock("/srv/app/lock", "abc")
    step = plan.restore_step("/c", "ID", Client("host"), 15, TARGET, "f" * 64, "u", jobs=2,
                             mode="exact", lock=lock)
    assert step.argv[-2:] == ("/srv/app/lock", "abc")


FACTS_OUT = """tool zstd yes
tool curl yes
tool sha256sum yes
tool docker yes
free 73912345
cache 700 root
cpus 2
server 150018 289317423
image postgres:15
client pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)
"""


def test_parse_facts() -> None:
    facts = plan.parse_facts(FACTS_OUT)
    assert facts.missing_tools == []
    assert (facts.free_kb, facts.cache, facts.cpus, facts.image) == (
        73912345, "700 root", 2, "postgres:15")
    assert (facts.server_major, facts.client_major, facts.client_version_text) == (
        15, 15, "15.18")
    assert facts.db_size == 289317423
    plan.check_facts(facts, Client("docker"), host="h", db="d")


def facts(**changes: object) -> HostFacts:
    base = plan.parse_facts(FACTS_OUT)
    return HostFacts(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("found", "client", "says"), [
    (facts(client_version="pg_dump (PostgreSQL) 14.11"), Client("docker", "postgres:14"),
     "pg_dump 14.11 on h is older than the database server (PostgreSQL 15), and pg_dump "
     "refuses newer servers: set backup.client_image to a PostgreSQL 15 image"),
    (facts(client_version="pg_dump (PostgreSQL) 13.2"), Client("host"),
     "install postgresql-client-15 on h and set backup.client_bin_dir: "
     "/usr/lib/postgresql/15/bin, or use backup.client: docker"),
    (facts(db_error="connection refused"), Client("docker"),
     "cannot connect to the database d from h: connection refused"),
    (facts(tools={"zstd": False, "curl": True, "sha256sum": False}), Client("host"),
     "h lacks zstd, sha256sum, which backups need: install them (apt-get install zstd "
     "coreutils)"),
    (facts(tools={"docker": False}), Client("docker"), "h has no docker"),
    (facts(docker_error="pull access denied"), Client("docker"),
     "the client container postgres:15 did not run on h: pull access denied"),
    (facts(server_version_num=None), Client("docker"), "could not tell the versions"),
])
def test_facts_that_refuse(found: HostFacts, client: Client, says: str) -> None:
    with pytest.raises(UserError) as caught:
        plan.check_facts(found, client, host="h", db="d")
    assert says in caught.value.message


def test_a_newer_client_is_fine() -> None:
    plan.check_facts(facts(client_version="pg_dump (PostgreSQL) 17.2"), Client("host"),
                     host="h", db="d")


def test_parsers() -> None:
    out = ("phase dump\nprogress 12\ncount\tpublic.a\t3\ncount\tpublic.b\t0\n"
           "etag 2 \"bb\"\netag 1 \"aa\"\ncount\tbad\tx\ndone\n")
    assert plan.parse_counts(out) == {"public.a": 3, "public.b": 0}
    assert plan.parse_etags(out) == [(1, '"aa"'), (2, '"bb"')]
    assert plan.parse_cache_list("20261126T020000Z.dump.zst 123\njunk\n") == {
        "20261126T020000Z": 123}


@pytest.mark.parametrize(("estimate", "parts"), [
    (0, 8), (100 * plan.MIB, 13), (10**12, 10_000)])
def test_part_plan(estimate: int, parts: int) -> None:
    assert plan.part_plan(estimate, 16 * plan.MIB) == parts


@pytest.mark.parametrize(("code", "stderr", "says"), [
    (30, "pg_dump: error: connection to server at \"db\" failed: Connection refused",
     "cannot connect to the database d from h: pg_dump: error: connection to server"),
    (30, "pg_dump: error: query failed: permission denied for table x",
     "pg_dump failed on h: pg_dump: error: query failed"),
    (31, "tee: write error: No space left on device\nno space left on the host",
     "the disk holding /c on h is full"),
    (40, "upload failed: HTTP 403 AccessDenied", "the upload from h to S3 failed: upload "
     "failed: HTTP 403 AccessDenied. The partial upload was aborted and no backup was recorded"),
    (50, "download from S3 failed: curl: (22) 404", "downloading the dump from S3 to h failed"),
    (60, "pg_restore: error: could not execute query", "pg_restore failed on h"),
    (124, "", "timed out"),
    (7, "", "the backup script failed on h (exit 7): no output"),
])
def test_failures_read_as_one_sentence(code: int, stderr: str, says: str) -> None:
    message = plan.explain_failure(code, stderr, host="h", cache_dir="/c", db="d")
    assert says in message
    assert "\n" not in message


def test_tail() -> None:
    assert plan.tail("a\n\nb\nc\nd\n") == "b | c | d"
    assert plan.tail("x" * 900).startswith("...")


def test_db_target_repr_hides_password() -> None:
    target = DbTarget((("host", "h"),), "hunter22")
    assert "hunter22" not in repr(target)
