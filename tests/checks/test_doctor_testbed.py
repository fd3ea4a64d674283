"""`inv doctor` against the test bed: a real sshd host running the local Docker Engine, a
PostgreSQL cluster with TLS, moto's S3, TLS fronts on 127.0.0.1:443, and DNS answers from a
hosts file bind-mounted in a mount namespace the test creates.

Each failing case is made at the host level: a known_hosts with the wrong key, a login whose
PATH has no `docker`, a login whose `docker` is a wrapper answering as Docker 19.03 without
Compose v2 (no old Docker can be installed here), a 2 MB tmpfs as app_dir, a process and a
container holding the web ports, a database that is down or speaks no TLS, a missing bucket,
a certificate about to expire, domains that point elsewhere or nowhere.

Traefik cannot run here; where a passing run needs it, `hostbed.fake_traefik` holds 443.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fabfile.checks import doctor
from fabfile.config import Config, load_config
from tests.checks import hostbed
from tests.checks.tls import Pem, make_ca, make_leaf, make_self_signed
from tests.checks.tlsserve import tls_server
from tests.helpers import INV, env_tree
from tests.support.docker import TEST_LABEL, DockerEngine, docker, remove_labelled
from tests.support.images import ImageSet
from tests.support.net import free_port
from tests.support.postgres import PgCluster
from tests.support.s3 import S3Server
from tests.support.sshd import SshServer, start_sshd, write_wrong_known_hosts

pytestmark = pytest.mark.testbed

DOMAIN = "app.doctor.test"
OLD_DOCKER = """#!/bin/sh
# Answers as Docker 19.03 without the Compose v2 plugin; everything else goes to the real CLI.
case "$1" in
  version) echo 19.03.15 ;;
  compose) echo "docker: 'compose' is not a docker command." >&2
           echo "See 'docker --help'" >&2; exit 1 ;;
  *) exec /usr/bin/docker "$@" ;;
esac
"""


@dataclass(frozen=True)
class Bed:
    server: SshServer
    keys: dict[str, Path]
    ca: Path
    good: Pem
    soon: Pem
    wrong: Pem
    tls_db_url: str
    s3: S3Server
    bucket: str
    work: Path


def _authorize(server: SshServer, name: str, forced_command: str | None) -> Path:
    """A new login key for the host; with a forced command it runs every command through it."""
    key = server.base / f"id_{name}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True, capture_output=True)
    public = Path(f"{key}.pub").read_text().strip()
    if forced_command is not None:
        escaped = forced_command.replace("\\", "\\\\").replace('"', '\\"')
        public = f'command="{escaped}" {public}'
        with (server.base / "authorized_keys").open("a") as handle:
            handle.write(public + "\n")
    return key


def _path_without_docker(directory: Path) -> Path:
    """A bin directory with every command of /usr/bin and /usr/sbin except Docker's."""
    directory.mkdir(parents=True)
    for source in (Path("/usr/sbin"), Path("/usr/bin")):
        for entry in source.iterdir():
            target = directory / entry.name
            if not entry.name.startswith("docker") and not target.exists():
                target.symlink_to(entry)
    return directory


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerEngine,
        test_images: ImageSet, s3_server: S3Server, tls_pg: PgCluster) -> Iterator[Bed]:
    work = tmp_path_factory.mktemp("doctor")
    nodocker = _path_without_docker(work / "nodocker-bin")
    olddocker = work / "olddocker-bin"
    olddocker.mkdir()
    (olddocker / "docker").write_text(OLD_DOCKER)
    (olddocker / "docker").chmod(0o755)
    pki = work / "pki"
    ca = make_ca(pki)
    bucket = f"doctor-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    server = start_sshd()
    try:
        keys = {
            "root": server.host.key_file,
            "nodocker": _authorize(server, "nodocker",
                                   f'PATH={nodocker} exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"'),
            "olddocker": _authorize(server, "olddocker", f'PATH={olddocker}:$PATH exec /bin/sh '
                                    '-c "$SSH_ORIGINAL_COMMAND"'),
            "stranger": _authorize(server, "stranger", None),
        }
        yield Bed(
            server=server, keys=keys, ca=ca.pem,
            good=make_leaf(pki, ca, [DOMAIN], days=90, stem="good"),
            soon=make_leaf(pki, ca, [DOMAIN], days=10, stem="soon"),
            wrong=make_self_signed(pki, ["wrong.example"], days=90, stem="wrong"),
            tls_db_url=f"postgresql://postgres@127.0.0.1:{tls_pg.port}/postgres?sslmode=require",
            s3=s3_server, bucket=bucket, work=work,
        )
    finally:
        server.stop()


def secrets(bed: Bed, db_url: str | None = None) -> dict[str, str]:
    return {"DOCTOR_DATABASE_URL": db_url or bed.tls_db_url,
            "DOCTOR_S3_KEY": bed.s3.access_key, "DOCTOR_S3_SECRET": bed.s3.secret_key}


def make_env(tmp_path: Path, bed: Bed, *, key: str = "root", known_hosts: Path | None = None,
             port: int | None = None, domains: list[str] | None = None,
             app_dir: Path | None = None, bucket: str | None = None,
             checks: dict[str, Any] | None = None,
             app: dict[str, Any] | None = None) -> Path:
    """An environments dir with `doctor.yaml`: the test bed as an environment's host."""
    host = bed.server.host
    doctor_yaml = {
        "domains": domains or [DOMAIN],
        "hosts": [{"address": host.address, "port": port or host.port, "user": host.user,
                   "key_file": str(bed.keys[key]),
                   "known_hosts": str(known_hosts or host.known_hosts), "connect_timeout": 5}],
        "deploy": {"app_dir": str(app_dir or tmp_path / "srv" / "app")},
        # The roster app's image is on the host, so the healthcheck check runs for real.
        "app": app or {"image": "shipyard-test/roster", "tag": "v2"},
        "database": {"url": {"secret": "DOCTOR_DATABASE_URL"}},
        "backup": {"bucket": bucket or bed.bucket, "endpoint_url": bed.s3.endpoint_url,
                   "region": bed.s3.region, "cache_dir": str(tmp_path / "cache"),
                   "access_key_id": {"secret": "DOCTOR_S3_KEY"},
                   "secret_access_key": {"secret": "DOCTOR_S3_SECRET"}},
        "checks": {"db_client_image": "postgres:15", "ca_file": str(bed.ca),
                   "min_free_disk_gb": 0.5, **(checks or {})},
    }
    return env_tree(tmp_path, {"doctor": doctor_yaml})


def config(root: Path, bed: Bed, db_url: str | None = None) -> Config:
    return load_config("doctor", root=root, environ=secrets(bed, db_url))


def verdicts(cfg: Config, *checks: str) -> dict[str, doctor.Result]:
    results = doctor.run(cfg, selected=checks, timeout=5)
    assert [r.check for r in results] == list(checks)
    return {r.check: r for r in results}


@pytest.fixture
def web_ports() -> Iterator[None]:
    with hostbed.web_ports():
        yield


def run_doctor_in_namespace(tmp_path: Path, root: Path, bed: Bed, hosts: str,
                            *args: str) -> subprocess.CompletedProcess[str]:
    """`inv doctor` where names resolve from `hosts` (see `hostbed.run_with_hosts`)."""
    env = {k: v for k, v in hostbed.base_env().items() if not k.startswith("DOCTOR_")}
    env.update(secrets(bed), DEPLOY_ENVIRONMENTS_DIR=str(root))
    return hostbed.run_with_hosts(tmp_path, hosts, [INV, "doctor", "--env=doctor", *args], env)


def lines(stdout: str) -> dict[str, str]:
    """The doctor's result lines by check name (`fix:` lines attached to their check)."""
    found: dict[str, str] = {}
    last = ""
    for line in stdout.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in ("ok", "FAIL", "skip") and words[1] in doctor.CHECK_NAMES:
            last = words[1]
            found[last] = line
        elif last and line.strip().startswith("fix:"):
            found[last] += "\n" + line.strip()
    return found


# --- the whole preflight, through the CLI -----------------------------------------------------


def test_a_healthy_environment_passes(tmp_path: Path, bed: Bed, web_ports: None) -> None:
    root = make_env(tmp_path, bed)
    checks = [c for c in doctor.CHECK_NAMES if c not in ("backup-age", "registry", "swarm")]
    with hostbed.fake_traefik(bed.good) as pid:
        proc = run_doctor_in_namespace(tmp_path, root, bed, f"127.0.0.1 {DOMAIN}",
                                       f"--only={','.join(checks)}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = lines(proc.stdout)
    assert list(found) == checks
    assert all(line.startswith("ok ") for line in found.values()), proc.stdout
    host = f"root@127.0.0.1:{bed.server.host.port}"
    assert host in found["ssh"] and "host key matches" in found["ssh"]
    assert "its program runs in shipyard-test/roster:v2" in found["healthcheck"]
    assert "Docker Engine 20." in found["docker"] or "Docker Engine 2" in found["docker"]
    assert "Docker Compose 2." in found["compose"]
    assert "GB free on " in found["disk"]
    assert f"80 free; 443 held by Traefik (traefik (pid {pid}))" in found["ports"]
    assert f"{DOMAIN} -> 127.0.0.1" in found["dns"]
    assert "reachable from the host over TLSv1." in found["database"]
    assert "(PostgreSQL 15." in found["database"]
    assert f"s3://{bed.bucket} at {bed.s3.endpoint_url} reachable" in found["bucket"]
    assert f"{DOMAIN}: 89 days left (Shipyard Test CA (Shipyard Tests))" in found["certificates"]
    assert "10 ok, 0 failed, 0 skipped" in proc.stdout


def test_dns_pointing_elsewhere_or_nowhere_fails_with_the_fix(tmp_path: Path, bed: Bed) -> None:
    root = make_env(tmp_path, bed, domains=[DOMAIN, "gone.doctor.test"])
    proc = run_doctor_in_namespace(tmp_path, root, bed, f"198.51.100.7 {DOMAIN}", "--only=dns")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    dns = lines(proc.stdout)["dns"]
    assert dns.split()[:3] == ["FAIL", "dns", "roster/doctor"]
    assert f"{DOMAIN} -> 198.51.100.7, not a host of this environment" in dns
    assert "gone.doctor.test does not resolve" in dns
    assert "fix: point the A/AAAA records of each domain at a host of this environment (" in dns
    shown = dns.split("fix:")[1]
    assert "127.0.0.1" in shown and ", " in shown, "the host's own addresses are listed too"
    assert "error: 1 check(s) failed: dns" in proc.stderr


def test_the_backup_age_comes_from_the_backup_engine(tmp_path: Path, bed: Bed,
                                                     s3_server: S3Server) -> None:
    """Until the backup engine exposes `newest_complete_age`, the check says it cannot run.
    With it: a bucket holding no complete backup fails; after `inv backup.create` it passes."""
    bucket = f"doctor-age-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    root = make_env(tmp_path, bed, bucket=bucket)
    cfg = config(root, bed)
    result = verdicts(cfg, "backup-age")["backup-age"]
    try:
        import fabfile.backup as engine
    except ImportError:
        engine = None  # type: ignore[assignment]
    if engine is None or not hasattr(engine, "newest_complete_age"):
        assert result.status == "skip" and result.detail.startswith("cannot check here: ")
        return
    assert (result.status, result.detail) == (
        "fail", "no complete backup (one with a manifest) found")
    created = subprocess.run(
        [INV, "backup.create", "--env=doctor"],
        env={**os.environ, **secrets(bed), "DEPLOY_ENVIRONMENTS_DIR": str(root), "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=300, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    result = verdicts(cfg, "backup-age")["backup-age"]
    assert (result.status, result.detail) == ("ok", "the newest complete backup is 0.0 hours old")


# --- each failing case ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["wrong key", "unknown host", "unauthorized", "unreachable"])
def test_ssh_and_host_key_failures(tmp_path: Path, bed: Bed, case: str) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    cases: dict[str, dict[str, Any]] = {
        "wrong key": {"known_hosts": write_wrong_known_hosts(bed.server.host,
                                                             tmp_path / "known_hosts")},
        "unknown host": {"known_hosts": empty},
        "unauthorized": {"key": "stranger"},
        "unreachable": {"port": free_port()},
    }
    settings = cases[case]
    cfg = config(make_env(tmp_path, bed, **settings), bed)
    found = verdicts(cfg, "ssh", "docker")
    expected = {
        "wrong key": ("does not match", "ssh-keyscan -p"),
        "unknown host": ("is not in", "ssh-keyscan -p"),
        "unauthorized": ("SSH authentication failed for root@127.0.0.1", "authorized_keys"),
        "unreachable": ("cannot reach 127.0.0.1:", "is up and that port"),
    }[case]
    assert found["ssh"].status == "fail"
    assert expected[0] in found["ssh"].detail
    assert found["ssh"].fix is not None and expected[1] in found["ssh"].fix
    assert (found["docker"].status, found["docker"].detail) == (
        "skip", "not checked: no SSH session")


def test_the_ssh_failure_through_the_cli_as_json(tmp_path: Path, bed: Bed) -> None:
    known_hosts = write_wrong_known_hosts(bed.server.host, tmp_path / "known_hosts")
    root = make_env(tmp_path, bed, known_hosts=known_hosts)
    proc = subprocess.run(
        [INV, "doctor", "--env=doctor", "--only=ssh,disk", "--json"],
        env={**os.environ, **secrets(bed), "DEPLOY_ENVIRONMENTS_DIR": str(root), "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert [(d["check"], d["status"]) for d in data] == [("ssh", "fail"), ("disk", "skip")]
    assert data[0]["fix"].startswith("verify the host's key out of band")
    assert "error: 1 check(s) failed: ssh" in proc.stderr


def test_a_host_without_docker(tmp_path: Path, bed: Bed) -> None:
    cfg = config(make_env(tmp_path, bed, key="nodocker"), bed)
    found = verdicts(cfg, "ssh", "docker", "compose", "database")
    assert found["ssh"].status == "ok"
    assert found["docker"].detail == "Docker is not installed (no `docker` on the host's PATH)"
    assert found["docker"].fix == "install Docker Engine: https://docs.docker.com/engine/install/"
    assert found["compose"].detail == "needs Docker first"
    assert found["database"].detail == "cannot run the psql client on the host: it needs Docker"


def test_an_old_docker_without_compose_v2(tmp_path: Path, bed: Bed) -> None:
    cfg = config(make_env(tmp_path, bed, key="olddocker"), bed)
    found = verdicts(cfg, "docker", "compose")
    assert (found["docker"].status, found["docker"].detail) == (
        "fail", "Docker Engine 19.03.15 is older than 20.10")
    assert found["compose"].status == "fail"
    assert found["compose"].detail == ("Docker Compose v2 (`docker compose`) is missing: "
                                       "See 'docker --help'")


def test_a_full_disk(tmp_path: Path, bed: Bed, small_disk: Callable[[str], Path]) -> None:
    disk = small_disk("2m")
    cfg = config(make_env(tmp_path, bed, app_dir=disk / "srv" / "app",
                          checks={"min_free_disk_gb": 1}), bed)
    result = verdicts(cfg, "disk")["disk"]
    assert result.status == "fail"
    assert result.detail == f"below 1 GB: 0.0 GB free on {disk} (app_dir {disk}/srv/app)"
    assert result.fix is not None and "checks.min_free_disk_gb" in result.fix


def test_web_ports_held_by_something_else(tmp_path: Path, bed: Bed, web_ports: None) -> None:
    owner = f"doctor-{uuid.uuid4().hex[:8]}"
    network = f"{owner}-net"
    cfg = config(make_env(tmp_path, bed), bed)
    listener = socket.create_server(("127.0.0.1", 80))
    try:
        docker("network", "create", "--label", f"{TEST_LABEL}={owner}", network)
        docker("run", "-d", "--name", owner, "--label", f"{TEST_LABEL}={owner}",
               "--network", network, "-p", "127.0.0.1:443:8000", "shipyard-test/app:v1")
        result = verdicts(cfg, "ports")["ports"]
    finally:
        listener.close()
        remove_labelled(owner)
    assert result.status == "fail"
    holder = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert result.detail == (f"80 held by {holder} (pid {os.getpid()}); "
                             f"443 held by container {owner} (shipyard-test/app:v1)")


@pytest.mark.parametrize("case", ["down", "no tls"])
def test_a_database_the_host_cannot_use(tmp_path: Path, bed: Bed, pg: PgCluster,
                                        case: str) -> None:
    url = {"down": f"postgresql://app:pw@127.0.0.1:{free_port()}/app?sslmode=require",
           "no tls": f"postgresql://postgres@127.0.0.1:{pg.port}/postgres?sslmode=require"}[case]
    cfg = config(make_env(tmp_path, bed), bed, db_url=url)
    result = verdicts(cfg, "database")["database"]
    assert result.status == "fail"
    assert result.detail.startswith("not reachable from the host: psql: error: connection to "
                                    'server at "127.0.0.1"')
    if case == "down":
        assert "Connection refused" in result.detail
        assert result.fix is not None and "firewall or trusted sources" in result.fix
    else:
        assert "server does not support SSL, but SSL was required" in result.detail
        assert result.fix == ("enable TLS on the database server: the app connects with "
                              "sslmode=require")
    assert "pw" not in result.detail


def test_a_missing_bucket(tmp_path: Path, bed: Bed) -> None:
    cfg = config(make_env(tmp_path, bed, bucket="doctor-no-such-bucket"), bed)
    result = verdicts(cfg, "bucket")["bucket"]
    assert (result.status, result.detail) == (
        "fail", f"s3://doctor-no-such-bucket at {bed.s3.endpoint_url} does not exist")
    assert result.fix == "create the bucket: inv backup.setup --env=doctor"


@pytest.mark.parametrize("case", ["expiring", "self-signed"])
def test_a_bad_certificate_on_the_host(tmp_path: Path, bed: Bed, web_ports: None,
                                       case: str) -> None:
    cfg = config(make_env(tmp_path, bed), bed)
    pem = bed.soon if case == "expiring" else bed.wrong
    with tls_server(pem, port=443):
        result = verdicts(cfg, "certificates")["certificates"]
    assert result.status == "fail"
    if case == "expiring":
        assert result.detail.startswith(f"{DOMAIN}: expires in 9 days, on ")
        assert result.detail.endswith("(threshold 15 days)")
    else:
        assert result.detail == (f"{DOMAIN}: self-signed certificate: not issued by a trusted "
                                 f"CA; hostname mismatch: the certificate is for wrong.example, "
                                 f"not {DOMAIN}")


def test_the_facts_take_one_remote_command(tmp_path: Path, bed: Bed) -> None:
    from fabfile.remote import connect

    cfg = config(make_env(tmp_path, bed), bed)
    transport = connect(cfg.hosts[0])
    try:
        result = transport.probe(doctor.facts_step(cfg, database=True))
    finally:
        transport.close()
    assert transport.round_trips == 1
    probes = doctor.parse_probes(result.stdout)
    assert list(probes) == ["docker", "compose", "disk", "listeners", "containers", "addresses",
                            "swarm", "healthcheck", "database"]
    assert all(p.rc == 0 for p in probes.values()), probes
    assert probes["database"].text.startswith("t|TLSv1.")


def test_a_healthcheck_the_image_cannot_run_fails_naming_the_program(tmp_path: Path,
                                                                     bed: Bed) -> None:
    """The busybox app image has no Python: the default check could never pass there."""
    root = make_env(tmp_path, bed, app={"image": "shipyard-test/app", "tag": "v1"})
    found = verdicts(config(root, bed), "healthcheck")["healthcheck"]
    assert found.status == "fail", found
    assert found.detail.startswith("`python3` is not in shipyard-test/app:v1"), found
    assert found.fix is not None and "app.healthcheck.command" in found.fix
