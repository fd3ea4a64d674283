"""The doctor's judgement as data: facts in (as the host prints them), verdicts out.

The fact texts are what the tools print (Docker 20.10, Compose v2, `df -Pk`, `ss -Hltnp`,
psql 15), several copied from runs on the test bed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fabfile import healthcheck
from fabfile.checks import certs, doctor
from fabfile.checks.doctor import BackupAgeFact, BucketFact, Facts, HostFacts, Probe
from fabfile.config import Config, load_config
from tests.helpers import DUMMY_SECRETS, env_tree

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

SCRIPT_OUTPUT = """
@@begin docker
20.10.24+dfsg1

@@end docker 0

@@begin compose
2.26.1-4

@@end compose 0

@@begin disk
app_dir\t/srv/roster\t/dev/vda         264212084 31501956  74888956      30% /
docker_root\t/var/lib/docker\t/dev/vda  264212084 31501956  74888956      30% /var/lib/docker

@@end disk 0

@@begin listeners
LISTEN 0      128    127.0.0.1:2299  0.0.0.0:* users:(("sshd",pid=9371,fd=3))

@@end listeners 0

@@begin containers

@@end containers 0

@@begin addresses
203.0.113.10 172.17.0.1 2001:db8::10

@@end addresses 0

@@begin database
t|TLSv1.3|15.18

@@end database 0
"""


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config("prod", environ=DUMMY_SECRETS)


def host_facts(cfg: Config, **changes: tuple[int, str]) -> HostFacts:
    probes = dict(doctor.parse_probes(SCRIPT_OUTPUT))
    for name, (rc, output) in changes.items():
        probes[name] = Probe(rc, output)
    return HostFacts(cfg.hosts[0], probes=probes, resolved=("203.0.113.10",))


def facts(*hosts: HostFacts, **kw: object) -> Facts:
    return Facts(hosts=hosts, now=NOW, **kw)  # type: ignore[arg-type]


def judge(check: str, cfg: Config, hf: HostFacts | None = None, **kw: object) -> doctor.Outcome:
    fn = next(c.evaluate for c in doctor.CHECKS if c.name == check)
    hosts = (hf,) if hf else (host_facts(cfg),)
    return fn(facts(*hosts, **kw), cfg, hosts[0])


def test_parse_probes() -> None:
    probes = doctor.parse_probes(SCRIPT_OUTPUT)
    assert list(probes) == ["docker", "compose", "disk", "listeners", "containers", "addresses",
                            "database"]
    assert probes["docker"] == Probe(0, "20.10.24+dfsg1")
    assert probes["containers"] == Probe(0, "")
    assert doctor.parse_probes("garbage\n@@begin x\nhalf") == {}


# --- docker and compose ---------------------------------------------------------------------


def test_docker_ok(cfg: Config) -> None:
    assert judge("docker", cfg) == doctor.ok("Docker Engine 20.10.24+dfsg1")


@pytest.mark.parametrize(("probe", "detail", "fix"), [
    ((0, "19.03.15"), "Docker Engine 19.03.15 is older than 20.10", None),
    ((127, "sh: 1: docker: not found"), "Docker is not installed (no `docker` on the host's PATH)",
     "install Docker Engine: https://docs.docker.com/engine/install/"),
    ((1, "permission denied while trying to connect to the Docker daemon socket at "
         "unix:///var/run/docker.sock: Get ...: dial unix /var/run/docker.sock: connect: "
         "permission denied"),
     "deploy may not use the Docker daemon (permission denied on its socket)",
     "add deploy to the docker group (sudo usermod -aG docker deploy) and log in again"),
    ((1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
         "daemon running?"),
     "the Docker daemon does not answer: Cannot connect to the Docker daemon at "
     "unix:///var/run/docker.sock. Is the docker daemon running?",
     "start it: sudo systemctl enable --now docker"),
])
def test_docker_failures(cfg: Config, probe: tuple[int, str], detail: str,
                         fix: str | None) -> None:
    assert judge("docker", cfg, host_facts(cfg, docker=probe)) == doctor.fail(detail, fix)


@pytest.mark.parametrize(("output", "verdict"), [
    ((0, "2.26.1-4"), doctor.ok("Docker Compose 2.26.1-4")),
    ((0, "v2.29.1-desktop.1"), doctor.ok("Docker Compose v2.29.1-desktop.1")),
    ((0, "2.12.2"), doctor.fail("Docker Compose 2.12.2 is older than 2.17")),
    ((1, "docker: 'compose' is not a docker command.\nSee 'docker --help'"),
     doctor.fail("Docker Compose v2 (`docker compose`) is missing: See 'docker --help'",
                 "install the Compose v2 plugin (Debian/Ubuntu: apt-get install "
                 "docker-compose-plugin from Docker's repository); the Python docker-compose "
                 "v1 does not count")),
])
def test_compose(cfg: Config, output: tuple[int, str], verdict: doctor.Outcome) -> None:
    assert judge("compose", cfg, host_facts(cfg, compose=output)) == verdict


def test_compose_without_docker_points_at_docker(cfg: Config) -> None:
    hf = host_facts(cfg, docker=(127, "sh: docker: not found"),
                    compose=(127, "sh: docker: not found"))
    verdict = judge("compose", cfg, hf)
    assert verdict.status == "fail" and verdict.detail == "needs Docker first"
    assert verdict.fix == "install Docker Engine: https://docs.docker.com/engine/install/"


# --- disk -----------------------------------------------------------------------------------


def test_disk_groups_paths_by_filesystem(cfg: Config) -> None:
    assert judge("disk", cfg) == doctor.ok(
        "76.7 GB free on / (app_dir /srv/roster); "
        "76.7 GB free on /var/lib/docker (docker_root /var/lib/docker)")


def test_disk_below_the_threshold(cfg: Config) -> None:
    hf = host_facts(cfg, disk=(0, "app_dir\t/srv/roster\ttmpfs 2048 8 2040 1% /srv\n"
                                  "backup_cache\t/var/backups/roster\t/dev/vda 264212084 "
                                  "31501956 74888956 30% /"))
    verdict = judge("disk", cfg, hf)
    assert verdict == doctor.fail("below 5 GB: 0.0 GB free on /srv (app_dir /srv/roster)")


def test_disk_unreadable(cfg: Config) -> None:
    verdict = judge("disk", cfg, host_facts(cfg, disk=(0, "df: /srv: No such file")))
    assert verdict.status == "fail" and "could not read free space" in verdict.detail


# --- ports ----------------------------------------------------------------------------------

TRAEFIK_PS = ('{"Names":"roster-traefik-1","Image":"traefik:v3.1",'
              '"Ports":"0.0.0.0:80->80/tcp, :::80->80/tcp, 0.0.0.0:443->443/tcp, '
              ':::443->443/tcp"}')
PROXY_SS = "\n".join(
    f'LISTEN 0 4096 {addr}:{port} {peer}:* users:(("docker-proxy",pid={pid},fd=4))'
    for addr, peer, port, pid in [("0.0.0.0", "0.0.0.0", 80, 101), ("[::]", "[::]", 80, 102),
                                  ("0.0.0.0", "0.0.0.0", 443, 103), ("[::]", "[::]", 443, 104)])


@pytest.mark.parametrize(("ss", "ps", "verdict"), [
    ("", "", doctor.ok("80 free; 443 free")),
    (PROXY_SS, TRAEFIK_PS, doctor.ok(
        "80 held by Traefik (container roster-traefik-1 (traefik:v3.1)); "
        "443 held by Traefik (container roster-traefik-1 (traefik:v3.1))")),
    ('LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("traefik",pid=7,fd=7))', "",
     doctor.ok("80 held by Traefik (traefik (pid 7)); 443 free")),
    ('LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=812,fd=6),("nginx",pid=811,fd=6))',
     "", doctor.fail("80 held by nginx (pid 812), nginx (pid 811); 443 free")),
    ('LISTEN 0 4096 0.0.0.0:443 0.0.0.0:* users:(("docker-proxy",pid=9,fd=4))',
     '{"Names":"web","Image":"shipyard-test/app:v1","Ports":"0.0.0.0:443->8000/tcp"}',
     doctor.fail("443 held by container web (shipyard-test/app:v1); 80 free")),
    ("LISTEN 0 511 0.0.0.0:80 0.0.0.0:*", "",
     doctor.fail("80 held by a process this user cannot see (run `sudo ss -ltnp` on the host); "
                 "443 free")),
    ("LISTEN 0 511 0.0.0.0:8080 0.0.0.0:*", "", doctor.ok("80 free; 443 free")),
])
def test_ports(cfg: Config, ss: str, ps: str, verdict: doctor.Outcome) -> None:
    assert judge("ports", cfg, host_facts(cfg, listeners=(0, ss), containers=(0, ps))) == verdict


def test_ports_without_ss(cfg: Config) -> None:
    verdict = judge("ports", cfg, host_facts(cfg, listeners=(127, "sh: ss: not found")))
    assert verdict == doctor.fail("cannot list listening sockets: sh: ss: not found",
                                  "install iproute2 (it provides `ss`)")


def test_ports_are_not_checked_without_traefik(tmp_path: Path) -> None:
    local = load_config("local", environ=DUMMY_SECRETS, dotenv_dir=tmp_path)
    assert judge("ports", local, host_facts(local)).status == "skip"


# --- dns ------------------------------------------------------------------------------------


def test_dns_points_at_the_hosts(cfg: Config) -> None:
    dns = {d: ("203.0.113.10", "2001:db8::10") for d in cfg.domains}
    verdict = judge("dns", cfg, dns=dns)
    assert verdict.status == "ok"
    assert verdict.detail.startswith("roster.acme.example -> 203.0.113.10, 2001:db8::10; ")


def test_dns_mismatch_and_missing_records(cfg: Config) -> None:
    dns: dict[str, tuple[str, ...] | str] = {
        "roster.acme.example": ("203.0.113.10",),
        "www.roster.acme.example": ("198.51.100.7",),
        "api.roster.acme.example": "Name or service not known",
    }
    verdict = judge("dns", cfg, dns=dns)
    assert verdict.status == "fail"
    assert verdict.detail == (
        "www.roster.acme.example -> 198.51.100.7, not a host of this environment; "
        "api.roster.acme.example does not resolve (Name or service not known)")
    assert verdict.fix is not None
    assert "(172.17.0.1, 2001:db8::10, 203.0.113.10)" in verdict.fix


# --- database -------------------------------------------------------------------------------


@pytest.mark.parametrize(("probe", "status", "detail", "fix_part"), [
    ((0, "t|TLSv1.3|15.18"), "ok", "reachable from the host over TLSv1.3 (PostgreSQL 15.18)",
     None),
    ((0, "f||15.18"), "fail", "connected without TLS (f||15.18)", "sslmode=require"),
    ((2, 'psql: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
         "\tIs the server running on that host and accepting TCP/IP connections?"), "fail",
     'not reachable from the host: psql: error: connection to server at "127.0.0.1", port 1 '
     "failed: Connection refused Is the server running on that host and accepting TCP/IP "
     "connections?", "firewall or trusted sources"),
    ((2, 'psql: error: connection to server at "db.example" (10.0.0.5), port 5432 failed: '
         "server does not support SSL, but SSL was required"), "fail",
     'not reachable from the host: psql: error: connection to server at "db.example" '
     "(10.0.0.5), port 5432 failed: server does not support SSL, but SSL was required",
     "enable TLS on the database server"),
    ((2, 'psql: error: connection to server at "db.example" (10.0.0.5), port 5432 failed: '
         'FATAL:  password authentication failed for user "app"'), "fail",
     'not reachable from the host: psql: error: connection to server at "db.example" '
     '(10.0.0.5), port 5432 failed: FATAL:  password authentication failed for user "app"',
     "check the user and password in PROD_DATABASE_URL"),
    ((125, "Unable to find image 'postgres:17-alpine' locally\ndocker: Error response from "
           "daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup failed."),
     "fail", "could not start the client image postgres:17-alpine: Unable to find image "
     "'postgres:17-alpine' locally docker: Error response from daemon: Get "
     "\"https://registry-1.docker.io/v2/\": dial tcp: lookup failed.",
     "checks.db_client_image"),
])
def test_database(cfg: Config, probe: tuple[int, str], status: str, detail: str,
                  fix_part: str | None) -> None:
    verdict = judge("database", cfg, host_facts(cfg, database=probe))
    assert (verdict.status, verdict.detail) == (status, detail)
    if fix_part:
        assert verdict.fix is not None and fix_part in verdict.fix


def test_database_needs_docker_on_the_host(cfg: Config) -> None:
    hf = host_facts(cfg, docker=(127, "sh: docker: not found"),
                    database=(127, "sh: docker: not found"))
    verdict = judge("database", cfg, hf)
    assert verdict.detail == "cannot run the psql client on the host: it needs Docker"


def test_database_of_the_stack_is_not_probed(tmp_path: Path) -> None:
    local = load_config("local", environ=DUMMY_SECRETS, dotenv_dir=tmp_path)
    assert judge("database", local, host_facts(local)) == doctor.skip(
        "the database is a service of the stack (database.local)")


def test_service_file_carries_the_url_without_argv() -> None:
    text = doctor.service_file(
        "postgresql://app:p%40ss@db.example:6543/roster?sslmode=require").decode()
    assert text.splitlines() == [
        "[doctor]", "user=app", "password=p@ss", "dbname=roster", "host=db.example",
        "port=6543", "sslmode=require", "connect_timeout=10",
        "application_name=shipyard-doctor"]


def test_facts_step_passes_values_as_arguments(cfg: Config) -> None:
    step = doctor.facts_step(cfg, database=True)
    assert step.argv[:2] == ("sh", "-c") and step.argv[2] == doctor.SCRIPTS.body("facts")
    assert step.argv[3:11] == ("sh", "/srv/roster", "/var/backups/roster", "postgres:17-alpine",
                               doctor.SCRIPTS.body("pg_probe"), "roster", "web",
                               "ghcr.io/acme/roster-api:latest")
    assert step.argv[11:] == ("/srv/roster/cache/healthcheck",
                              "shell\n" + healthcheck.probe(cfg).argv[0])
    assert step.stdin is not None and b"password=prod-pw" in step.stdin
    assert not any("prod-pw" in arg for arg in step.argv)
    assert doctor.facts_step(cfg, database=False).argv[6] == ""
    assert doctor.facts_step(cfg, database=False, health=False).argv[-1] == ""


@pytest.mark.parametrize(("output", "status", "detail"), [
    ("image ghcr.io/acme/roster-api:abc\n@probe passed", "ok",
     "its program runs in ghcr.io/acme/roster-api:abc"),
    ("image ghcr.io/acme/roster-api:abc\n@probe passed-before", "ok",
     "its program runs in ghcr.io/acme/roster-api:abc"),
    ("image ghcr.io/acme/roster-api:latest\n@probe no-image", "skip",
     "ghcr.io/acme/roster-api:latest is not on the host yet (a deploy pulls it and checks then)"),
    ("image ghcr.io/acme/roster-api:abc\n@log sh: 1: python3: not found\n"
     "@error health-missing 127", "fail", "`python3` is not in ghcr.io/acme/roster-api:abc"),
])
def test_healthcheck(cfg: Config, output: str, status: str, detail: str) -> None:
    verdict = judge("healthcheck", cfg, host_facts(cfg, healthcheck=(0, output)))
    assert verdict.status == status and verdict.detail.startswith(detail), verdict
    if status == "fail":
        assert "app.healthcheck.command" in (verdict.fix or "")


# --- bucket and backups ---------------------------------------------------------------------


@pytest.mark.parametrize(("fact", "status", "detail", "fix_part"), [
    (BucketFact(), "ok", "s3://roster-backups at AWS eu-central-1 reachable with the configured "
     "credentials", None),
    (BucketFact("404", "Not Found"), "fail", "s3://roster-backups at AWS eu-central-1 does not "
     "exist", "inv backup.setup --env=prod"),
    (BucketFact("403", "Forbidden"), "fail", "s3://roster-backups at AWS eu-central-1: access "
     "denied (403)", "PROD_BACKUP_ACCESS_KEY_ID"),
    (BucketFact("EndpointConnectionError", "Could not connect to the endpoint URL"), "fail",
     "s3://roster-backups at AWS eu-central-1: Could not connect to the endpoint URL",
     "backup.endpoint_url"),
])
def test_bucket(cfg: Config, fact: BucketFact, status: str, detail: str,
                fix_part: str | None) -> None:
    verdict = judge("bucket", cfg, bucket=fact)
    assert (verdict.status, verdict.detail) == (status, detail)
    assert fix_part is None or (verdict.fix is not None and fix_part in verdict.fix)


@pytest.mark.parametrize(("fact", "status", "detail"), [
    (BackupAgeFact(age=timedelta(hours=3, minutes=12)), "ok",
     "the newest complete backup is 3.2 hours old"),
    (BackupAgeFact(age=timedelta(hours=30)), "fail",
     "the newest complete backup is 30.0 hours old (limit 26)"),
    (BackupAgeFact(), "fail", "no complete backup (one with a manifest) found"),
    (BackupAgeFact(error="AccessDenied"), "fail", "could not list backups: AccessDenied"),
    (BackupAgeFact(unavailable="no engine"), "skip", "cannot check here: no engine"),
])
def test_backup_age(cfg: Config, fact: BackupAgeFact, status: str, detail: str) -> None:
    verdict = judge("backup-age", cfg, backup_age=fact)
    assert (verdict.status, verdict.detail) == (status, detail)


def test_no_backup_section_skips_both(tmp_path: Path) -> None:
    local = load_config("local", environ=DUMMY_SECRETS, dotenv_dir=tmp_path)
    assert judge("bucket", local).status == "skip"
    assert judge("backup-age", local).status == "skip"


# --- certificates, ssh, and the whole evaluation --------------------------------------------


def report(name: str, days: float, **kw: object) -> certs.CertReport:
    return certs.CertReport(certs.Endpoint(name, "203.0.113.10"), subject=name, issuer="R11",
                            not_after=NOW + timedelta(days=days), names=(name,), trusted=True,
                            **kw)  # type: ignore[arg-type]


def test_certificates(cfg: Config) -> None:
    good = dataclasses.replace(host_facts(cfg), certs=(report("a.example", 60),))
    assert judge("certificates", cfg, good) == doctor.ok("a.example: 60 days left (R11)")
    bad = dataclasses.replace(host_facts(cfg), certs=(
        report("a.example", 60), report("b.example", 3),
        certs.CertReport(certs.Endpoint("c.example", "203.0.113.10"),
                         error="connection to 203.0.113.10:443 refused")))
    verdict = judge("certificates", cfg, bad)
    assert verdict.status == "fail"
    assert verdict.detail == ("b.example: expires in 3 days, on 2026-06-04 (threshold 15 days); "
                              "c.example: connection to 203.0.113.10:443 refused")


def test_a_failed_ssh_session_skips_the_host_checks_but_not_the_local_ones(cfg: Config) -> None:
    down = HostFacts(cfg.hosts[0], ssh_error="the host key of vps1.roster.acme.example:22 does "
                     "not match ~/.ssh/known_hosts", certs=(report("roster.acme.example", 60),))
    results = doctor.evaluate(facts(down, dns={d: ("203.0.113.10",) for d in cfg.domains},
                                    bucket=BucketFact(), backup_age=BackupAgeFact(
                                        age=timedelta(hours=1))),
                              dataclasses.replace(cfg, hosts=cfg.hosts[:1]))
    by_check = {r.check: r for r in results}
    assert list(by_check) == list(doctor.CHECK_NAMES)
    assert by_check["ssh"].status == "fail"
    assert by_check["ssh"].fix is not None and "ssh-keyscan -p 22" in by_check["ssh"].fix
    for name in ("docker", "compose", "disk", "ports", "database"):
        assert (by_check[name].status, by_check[name].detail) == (
            "skip", "not checked: no SSH session")
    assert by_check["certificates"].status == "ok"
    assert by_check["bucket"].status == "ok" and by_check["backup-age"].status == "ok"
    assert by_check["dns"].status == "fail"


def test_every_failure_carries_a_fix(cfg: Config) -> None:
    hf = host_facts(cfg, docker=(0, "19.03.1"), compose=(0, "2.0.0"),
                    listeners=(0, 'LISTEN 0 1 0.0.0.0:80 0.0.0.0:* users:(("apache2",pid=1,fd=3))'),
                    disk=(0, "app_dir\t/srv\ttmpfs 10 9 1 90% /srv"),
                    database=(2, "psql: error: timeout expired"))
    hf = dataclasses.replace(hf, certs=(report("x.example", 1),))
    results = doctor.evaluate(facts(hf, dns={}, bucket=BucketFact("404"),
                                    backup_age=BackupAgeFact()),
                              dataclasses.replace(cfg, hosts=cfg.hosts[:1]))
    failed = [r for r in results if r.status == "fail"]
    assert [r.check for r in failed] == [c for c in doctor.CHECK_NAMES
                                         if c not in ("ssh", "swarm")]
    assert all(r.fix for r in failed)
    assert all(r.fix is None for r in results if r.status != "fail")


def test_only_selected_checks_are_judged(cfg: Config) -> None:
    second = dataclasses.replace(host_facts(cfg), host=cfg.hosts[1])
    results = doctor.evaluate(facts(host_facts(cfg), second), cfg, ["docker", "disk"])
    assert [(r.check, r.target) for r in results] == [
        ("docker", "deploy@vps1.roster.acme.example:22"),
        ("docker", "deploy@vps2.roster.acme.example:22"),
        ("disk", "deploy@vps1.roster.acme.example:22"),
        ("disk", "deploy@vps2.roster.acme.example:22"),
    ]


def test_versions() -> None:
    assert doctor.parse_version("20.10.24+dfsg1") == (20, 10, 24)
    assert doctor.parse_version("v2.29.1-desktop.1") == (2, 29, 1)
    assert doctor.parse_version("Docker version 27.3") == (27, 3)
    assert doctor.parse_version("unknown") is None


def test_only_option_names_are_checked(tmp_path: Path) -> None:
    from tests.helpers import run_inv

    root = env_tree(tmp_path)
    proc = run_inv("doctor", "--env=prod", "--only=docker,dsn", env_dir=root)
    assert proc.returncode == 1
    assert "--only takes check names from: ssh, docker, compose, swarm, disk, ports, dns, " \
           "healthcheck, database, bucket, registry, backup-age, certificates (got dsn)" \
           in proc.stderr


@pytest.mark.parametrize(("only", "skip", "expected"), [
    ("", "", doctor.CHECK_NAMES),
    ("", "certificates,backup-age", doctor.CHECK_NAMES[:11]),
    ("disk,ssh", "", ("ssh", "disk")),
    ("disk,ssh,dns", "ssh", ("disk", "dns")),
])
def test_only_and_skip_select_checks_in_their_order(only: str, skip: str,
                                                    expected: tuple[str, ...]) -> None:
    from fabfile.tasks.doctor import select

    assert select(only, skip) == expected


@pytest.mark.parametrize(("args", "message"), [
    (("--skip=certs",), "--skip takes check names from: ssh, docker"),
    (("--only=dns", "--skip=dns"), "--only and --skip leave no check to run"),
])
def test_skip_mistakes_are_clear(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    from tests.helpers import run_inv

    proc = run_inv("doctor", "--env=prod", *args, env_dir=env_tree(tmp_path))
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


# --- secrets the environment names but nobody set -------------------------------------------


@pytest.fixture(scope="module")
def unset_cfg() -> Config:
    """prod with only the webhook set: every other secret is a placeholder."""
    return load_config("prod", environ={"SLACK_WEBHOOK_URL": "https://hooks.example/x"},
                       placeholder_secrets=True)


def test_a_check_whose_secret_is_unset_fails_naming_it(unset_cfg: Config) -> None:
    database = judge("database", unset_cfg)
    assert database == doctor.fail(
        "the secret PROD_DATABASE_URL is not set, so this could not be checked",
        "export PROD_DATABASE_URL or add it to .env.prod; in GitHub Actions, pass the "
        "environment's secret to the step")
    for check in ("bucket", "backup-age"):
        verdict = judge(check, unset_cfg, bucket=BucketFact(), backup_age=BackupAgeFact())
        assert verdict.detail == ("the secrets PROD_BACKUP_ACCESS_KEY_ID and "
                                  "PROD_BACKUP_SECRET_ACCESS_KEY are not set, so this could "
                                  "not be checked")
        assert verdict.fix is not None and verdict.fix.startswith(
            "export PROD_BACKUP_ACCESS_KEY_ID and PROD_BACKUP_SECRET_ACCESS_KEY or add them")


def test_a_placeholder_is_never_probed_with(unset_cfg: Config) -> None:
    """No database probe on the host, no S3 call: the checks fail without network."""
    step = doctor.facts_step(unset_cfg, database=True)
    assert step.stdin == b"" and unset_cfg.checks.db_client_image not in step.argv
    results = doctor.run(unset_cfg, selected=("bucket", "backup-age"), timeout=1)
    assert [(r.check, r.status) for r in results] == [("bucket", "fail"), ("backup-age", "fail")]


def test_registry_check(cfg: Config) -> None:
    """cfg (prod) names ghcr.io with GHCR_TOKEN: listing the image's tags proves the token."""
    assert cfg.registry is not None and cfg.registry.server == "ghcr.io"
    public = dataclasses.replace(cfg, registry=None)
    assert judge("registry", public).status == "skip"
    good = judge("registry", cfg, registry=doctor.RegistryFact(tags=3))
    assert good == doctor.ok(f"ghcr.io lets this machine read {cfg.app.image} as acme-deploy "
                             "(3 tags)")
    bad = judge("registry", cfg, registry=doctor.RegistryFact(
        error="the registry ghcr.io rejected the credentials of acme-deploy"))
    assert bad.status == "fail" and "rejected" in bad.detail
    unset = load_config("prod", environ={k: v for k, v in DUMMY_SECRETS.items()
                                         if k != "GHCR_TOKEN"}, placeholder_secrets=True)
    assert "the secret GHCR_TOKEN is not set" in judge("registry", unset).detail
