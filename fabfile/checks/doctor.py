"""`inv doctor`: a preflight of an environment's hosts and the services it depends on.

Facts first, judgement second. Each host answers ONE remote command (`scripts/facts.sh`: Docker
and Compose versions, free disk, listeners on 80/443, published container ports, the host's
addresses, and a `psql` probe of the database run from the host, the place the app connects
from). DNS, the bucket, the newest backup and the certificates are looked at from where the
task runs, concurrently with the hosts. Then every check in `CHECKS` is a name, a pure
function of those facts, and the fix printed when it fails; tests feed them facts as data.

Where each probe runs, and why:
- database: on the host, inside a throwaway `checks.db_client_image` container with host
  networking, because managed databases admit the hosts' addresses, not the operator's. The
  credentials reach `psql` through a service file written from stdin, never through argv
  or the container's environment.
- bucket and backups: where the task runs, with the environment's S3 credentials (hosts
  never hold them; the backup engine uploads through presigned URLs).
- certificates: from where the task runs to each host's address on 443 with each domain
  as SNI, so every host's certificate is seen even before DNS points at it.

The environment is loaded with placeholders for secrets that are not set (a CI job holds
only the secrets its checks need): a check that needs one fails with the secret's name, and
its probe is not run with the placeholder.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fabfile.checks import certs
from fabfile.config import Backup, Config, Host, Secret
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.remote import Step, connect
from fabfile.shell import Scripts
from fabfile.swarm.topology import advertise, control

MIN_DOCKER = (20, 10)
MIN_COMPOSE = (2, 17)
"""Compose v2.17 added `up --wait-timeout`, which the deploy's first start relies on."""
WEB_PORTS = (80, 443)
DOCKER_INSTALL = "https://docs.docker.com/engine/install/"

SCRIPTS = Scripts("fabfile.checks", {"facts": ("fabfile.deploy:lib",), "pg_probe": ()})
"""`scripts/facts.sh` (with the rollout library's `health_probe`) and `scripts/pg_probe.sh`."""


Status = Literal["ok", "fail", "skip"]


@dataclass(frozen=True)
class Outcome:
    """A check's verdict on one target; `fix` replaces the check's generic fix."""

    status: Status
    detail: str
    fix: str | None = None


def ok(detail: str) -> Outcome:
    return Outcome("ok", detail)


def fail(detail: str, fix: str | None = None) -> Outcome:
    return Outcome("fail", detail, fix)


def skip(detail: str) -> Outcome:
    return Outcome("skip", detail)


@dataclass(frozen=True)
class Probe:
    """One command of the facts script: its exit code and its output (stdout + stderr)."""

    rc: int
    output: str

    @property
    def text(self) -> str:
        return self.output.strip()


@dataclass(frozen=True)
class HostFacts:
    host: Host
    ssh_error: str | None = None
    probes: Mapping[str, Probe] = field(default_factory=dict)
    resolved: tuple[str, ...] = ()
    certs: tuple[certs.CertReport, ...] = ()


@dataclass(frozen=True)
class BucketFact:
    """head_bucket's answer: `code` is S3's error code, or a connection failure's class."""

    code: str | None = None
    message: str = ""


@dataclass(frozen=True)
class BackupAgeFact:
    """`unavailable`: the age cannot be known here; `error`: looking it up failed."""

    age: timedelta | None = None
    unavailable: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RegistryFact:
    """What listing the app image's tags said: how many, or why it failed."""

    tags: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Facts:
    hosts: tuple[HostFacts, ...]
    dns: Mapping[str, tuple[str, ...] | str] = field(default_factory=dict)
    bucket: BucketFact | None = None
    backup_age: BackupAgeFact | None = None
    registry: RegistryFact | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


Evaluate = Callable[[Facts, Config, HostFacts | None], Outcome]


@dataclass(frozen=True)
class Check:
    """`scope` host: judged once per host; env: once for the environment. `remote`: judged
    from the facts script's output, so not at all without an SSH session; `reads_facts`: uses
    that output when there is some."""

    name: str
    scope: Literal["host", "env"]
    evaluate: Evaluate
    fix: str
    remote: bool = False
    reads_facts: bool = False


@dataclass(frozen=True)
class Result:
    check: str
    target: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "target": self.target, "status": self.status,
                "detail": redact(self.detail), "fix": redact(self.fix) if self.fix else None}


# ---------------------------------------------------------------------------------------------
# Parsing the facts script's output (pure)


def parse_probes(output: str) -> dict[str, Probe]:
    """Split the facts script's output into its probes (`@@begin NAME` ... `@@end NAME RC`)."""
    probes: dict[str, Probe] = {}
    current: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith("@@begin "):
            current, lines = line.removeprefix("@@begin ").strip(), []
            continue
        if line.startswith("@@end ") and current is not None:
            parts = line.split()
            rc = int(parts[2]) if len(parts) > 2 and parts[2].lstrip("-").isdigit() else -1
            probes[current] = Probe(rc, "\n".join(lines).strip("\n"))
            current = None
            continue
        if current is not None:
            lines.append(line)
    return probes


def parse_version(text: str) -> tuple[int, ...] | None:
    """`20.10.24+dfsg1` -> (20, 10, 24); `v2.29.1-desktop.1` -> (2, 29, 1)."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class Disk:
    label: str
    path: str
    mount: str
    available_kb: int


def parse_disks(text: str) -> list[Disk]:
    """Lines `LABEL<TAB>PATH<TAB><df -Pk data line>` as the facts script prints them."""
    disks = []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        fields = parts[2].split(None, 5)
        if len(fields) < 6 or not fields[3].isdigit():
            continue
        disks.append(Disk(parts[0], parts[1], fields[5], int(fields[3])))
    return disks


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    processes: tuple[tuple[str, int], ...]


def parse_listeners(text: str) -> list[Listener]:
    """`ss -Hltnp` lines: state, queues, local address:port, peer, `users:(("name",pid=N,...))`."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        procs = tuple((name, int(pid)) for name, pid in
                      re.findall(r'\("([^"]+)",pid=(\d+)', line))
        listeners.append(Listener(int(port), address.strip("[]"), procs))
    return listeners


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    host_ports: frozenset[int]

    @property
    def is_traefik(self) -> bool:
        return "traefik" in self.image.lower() or "traefik" in self.name.lower()


def parse_containers(text: str) -> list[Container]:
    """`docker ps` JSON lines (Names, Image, Ports); host ports from `0.0.0.0:80->80/tcp`."""
    containers = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):
            continue
        ports = frozenset(int(p) for p in re.findall(r":(\d+)->", str(row.get("Ports", ""))))
        containers.append(Container(str(row.get("Names", "")), str(row.get("Image", "")), ports))
    return containers


def parse_addresses(text: str) -> set[str]:
    found = set()
    for token in text.split():
        address = _ip(token)
        if address:
            found.add(address)
    return found


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(kept[-lines:]) or "no output"


# ---------------------------------------------------------------------------------------------
# The checks (pure)


def _need(host: HostFacts | None) -> HostFacts:
    assert host is not None
    return host


def _probe(host: HostFacts, name: str) -> Probe | None:
    return host.probes.get(name)


def unset(*secrets: Secret | None) -> list[Secret]:
    """The secrets among these that are placeholders: named in the YAML but not set."""
    return [s for s in secrets if s is not None and s.placeholder]


def _unset_outcome(cfg: Config, *secrets: Secret | None) -> Outcome | None:
    missing = unset(*secrets)
    if not missing:
        return None
    names = " and ".join(s.name for s in missing)
    what = f"the secrets {names} are" if len(missing) > 1 else f"the secret {names} is"
    return fail(f"{what} not set, so this could not be checked",
                f"export {names} or add {'them' if len(missing) > 1 else 'it'} to "
                f".env.{cfg.env}; in GitHub Actions, pass the environment's secret to the step")


def _backup_keys(backup: Backup) -> tuple[Secret | None, Secret | None]:
    return backup.access_key_id, backup.secret_access_key


def check_ssh(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    host = _need(hf).host
    if host.transport == "local":
        return ok("local transport: commands run on this machine, no SSH")
    error = _need(hf).ssh_error
    if error is None:
        return ok(f"logged in as {host.user}; host key matches {host.known_hosts}")
    lowered = error.lower()
    if "host key" in lowered or "known_hosts" in lowered:
        fix = (f"verify the host's key out of band (ssh-keyscan -p {host.port} {host.address}, "
               f"compare the fingerprint with the provider's console), then put that line in "
               f"{host.known_hosts}")
    elif "authentication" in lowered:
        fix = (f"put the public half of {host.key_file or 'your key'} in ~{host.user}/.ssh/"
               "authorized_keys on the host, or fix hosts[].user / hosts[].key_file")
    else:
        fix = (f"check that the host is up and that port {host.port} is open to you "
               "(hosts[].address / hosts[].port)")
    return fail(error, fix)


def _docker_problem(probe: Probe | None, user: str) -> Outcome | None:
    """Why `docker` cannot be used at all (missing, daemon down, no permission), if so."""
    if probe is None:
        return fail("no answer from the host's facts script")
    text = probe.text
    if probe.rc == 127 or "not found" in text.split("\n", 1)[0]:
        return fail("Docker is not installed (no `docker` on the host's PATH)",
                    f"install Docker Engine: {DOCKER_INSTALL}")
    if "permission denied" in text.lower():
        return fail(f"{user} may not use the Docker daemon (permission denied on its socket)",
                    f"add {user} to the docker group (sudo usermod -aG docker {user}) and "
                    "log in again")
    if probe.rc != 0 or "cannot connect to the docker daemon" in text.lower():
        return fail(f"the Docker daemon does not answer: {_tail(text, 1)}",
                    "start it: sudo systemctl enable --now docker")
    return None


def check_docker(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    host = _need(hf)
    probe = _probe(host, "docker")
    problem = _docker_problem(probe, host.host.user)
    if problem:
        return problem
    assert probe is not None
    version = parse_version(probe.text)
    if version is None:
        return fail(f"unrecognised Docker version {probe.text!r}")
    if version[:2] < MIN_DOCKER:
        return fail(f"Docker Engine {probe.text} is older than {_dotted(MIN_DOCKER)}")
    return ok(f"Docker Engine {probe.text}")


def check_compose(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if cfg.deploy.engine == "swarm":
        return skip("not needed: deploy.engine is swarm")
    host = _need(hf)
    problem = _docker_problem(_probe(host, "docker"), host.host.user)
    if problem:
        return fail("needs Docker first", problem.fix)
    probe = _probe(host, "compose")
    if probe is None:
        return fail("no answer from the host's facts script")
    version = parse_version(probe.text) if probe.rc == 0 else None
    if version is None:
        return fail(f"Docker Compose v2 (`docker compose`) is missing: {_tail(probe.text, 1)}",
                    "install the Compose v2 plugin (Debian/Ubuntu: apt-get install "
                    "docker-compose-plugin from Docker's repository); the Python "
                    "docker-compose v1 does not count")
    if version[0] < 2 or version < MIN_COMPOSE:
        return fail(f"Docker Compose {probe.text} is older than {_dotted(MIN_COMPOSE)}")
    return ok(f"Docker Compose {probe.text}")


def check_disk(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    host = _need(hf)
    probe = _probe(host, "disk")
    disks = parse_disks(probe.output) if probe else []
    if not disks:
        text = probe.text if probe else "no answer"
        return fail(f"could not read free space: {_tail(text, 1)}")
    minimum = cfg.checks.min_free_disk_gb
    by_mount: dict[str, list[Disk]] = {}
    for disk in disks:
        by_mount.setdefault(disk.mount, []).append(disk)
    parts, low = [], []
    for mount, group in by_mount.items():
        free_gb = group[0].available_kb * 1024 / 1e9
        what = ", ".join(f"{d.label} {d.path}" for d in group)
        text = f"{free_gb:.1f} GB free on {mount} ({what})"
        parts.append(text)
        if free_gb < minimum:
            low.append(text)
    if low:
        return fail(f"below {minimum:g} GB: " + "; ".join(low))
    return ok("; ".join(parts))


def check_ports(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if not cfg.traefik.enabled:
        return skip("Traefik is disabled in this environment")
    host = _need(hf)
    if cfg.deploy.engine == "swarm" and host.host != control(cfg):
        return skip(f"Traefik runs on the first manager, {control(cfg).label}")
    probe = _probe(host, "listeners")
    if probe is None or probe.rc != 0:
        text = probe.text if probe else "no answer"
        return fail(f"cannot list listening sockets: {_tail(text, 1)}",
                    "install iproute2 (it provides `ss`)")
    containers_probe = _probe(host, "containers")
    containers = parse_containers(containers_probe.output) if containers_probe else []
    listeners = parse_listeners(probe.output)
    parts, bad = [], []
    for port in WEB_PORTS:
        holders, foreign = _holders(port, listeners, containers)
        if not holders:
            parts.append(f"{port} free")
        elif foreign:
            bad.append(f"{port} held by {', '.join(foreign)}")
        else:
            parts.append(f"{port} held by Traefik ({', '.join(holders)})")
    if bad:
        return fail("; ".join(bad + parts))
    return ok("; ".join(parts))


@dataclass(frozen=True)
class SwarmState:
    """A host's part in a swarm, from the `swarm` probe. A worker knows no cluster id, only
    the addresses of the managers it reaches."""

    state: str
    manager: bool
    cluster: str
    addr: str
    managers: tuple[str, ...]


def _swarm_state(hf: HostFacts) -> SwarmState | None:
    probe = _probe(hf, "swarm")
    parts = probe.text.split() if probe and probe.rc == 0 else []
    if len(parts) != 5:
        return None
    managers = tuple(a.rsplit(":", 1)[0] for a in parts[4].strip("-").split(",") if a)
    return SwarmState(parts[0], parts[1] == "true", parts[2].strip("-"), parts[3].strip("-"),
                      managers)


def check_swarm(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if cfg.deploy.engine != "swarm":
        return skip("deploy.engine is compose")
    host = _need(hf)
    found = _swarm_state(host)
    if found is None:
        return fail("cannot read the host's swarm state (`docker info` failed)")
    if found.state != "active":
        return fail(f"not in a swarm (state {found.state})",
                    f"run `inv setup --env={cfg.env}` to form or join the swarm")
    role = "manager" if found.manager else "worker"
    want = host.host.role or "worker"
    if want != role:
        return fail(f"a {role} of the swarm, configured as a {want}",
                    f"run `inv setup --env={cfg.env}` (it promotes or demotes)")
    head = next((h for h in facts.hosts if h.host == control(cfg)), None)
    lead = _swarm_state(head) if head is not None else None
    same = lead is None or (found.cluster == lead.cluster if found.cluster and lead.cluster
                            else advertise(control(cfg)) in found.managers)
    if not same:
        return fail(f"in another swarm than {control(cfg).label} (its managers: "
                    f"{', '.join(found.managers) or 'none'})",
                    "run `docker swarm leave --force` on it, then `inv setup`")
    expected = advertise(host.host)
    if found.addr and found.addr != expected:
        return fail(f"advertises {found.addr}, configured as {expected}",
                    "fix hosts[].advertise_address, or rejoin the node with that address")
    return ok(f"{role} of the swarm of {control(cfg).label}, at {found.addr}")


def _holders(port: int, listeners: list[Listener],
             containers: list[Container]) -> tuple[list[str], list[str]]:
    """Who holds `port`, and which of them are not Traefik."""
    holders: list[str] = []
    foreign: list[str] = []
    publishing = [c for c in containers if port in c.host_ports]
    for container in publishing:
        label = f"container {container.name} ({container.image})"
        holders.append(label)
        if not container.is_traefik:
            foreign.append(label)
    for listener in (item for item in listeners if item.port == port):
        if not listener.processes:
            label = "a process this user cannot see (run `sudo ss -ltnp` on the host)"
            if not publishing:
                holders.append(label)
                foreign.append(label)
            continue
        for name, pid in listener.processes:
            if name == "docker-proxy" and publishing:
                continue
            label = f"{name} (pid {pid})"
            if label in holders:
                continue
            holders.append(label)
            if name != "traefik":
                foreign.append(label)
    return holders, foreign


def _host_addresses(facts: Facts) -> set[str]:
    found: set[str] = set()
    for host in facts.hosts:
        found.update(host.resolved)
        addresses = host.probes.get("addresses")
        if addresses is not None and addresses.rc == 0:
            found.update(parse_addresses(addresses.output))
    return found


def check_dns(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if not cfg.traefik.enabled:
        return skip("Traefik is disabled in this environment: no public routing")
    if not cfg.domains:
        return skip("no domains configured")
    expected = _host_addresses(facts)
    good, bad = [], []
    for domain in cfg.domains:
        answer = facts.dns.get(domain, "not looked up")
        if isinstance(answer, str):
            bad.append(f"{domain} does not resolve ({answer})")
            continue
        stray = [a for a in answer if a not in expected]
        if stray:
            bad.append(f"{domain} -> {', '.join(stray)}, not a host of this environment")
        else:
            good.append(f"{domain} -> {', '.join(answer)}")
    if bad:
        shown = ", ".join(sorted(expected)) or "unknown"
        return fail("; ".join(bad), f"point the A/AAAA records of each domain at a host of "
                    f"this environment ({shown}); DNS changes can take the record's TTL")
    return ok("; ".join(good))


def check_database(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if cfg.database.url is None:
        return skip("the database is a service of the stack (database.local)")
    missing = _unset_outcome(cfg, cfg.database.url)
    if missing:
        return missing
    host = _need(hf)
    secret = cfg.database.url.name
    probe = _probe(host, "database")
    if probe is None:
        return fail("no answer from the host's facts script")
    problem = _docker_problem(_probe(host, "docker"), host.host.user)
    if problem:
        return fail("cannot run the psql client on the host: it needs Docker", problem.fix)
    text = redact(probe.text)
    if probe.rc == 0:
        fields = text.splitlines()[-1].split("|") if text else []
        if len(fields) == 3 and fields[0] == "t":
            return ok(f"reachable from the host over {fields[1] or 'TLS'} "
                      f"(PostgreSQL {fields[2]})")
        return fail(f"connected without TLS ({text or 'no answer'})",
                    f"set sslmode=require (or verify-full) in {secret} and enable TLS on "
                    "the server")
    lowered = text.lower()
    if probe.rc == 125 or "unable to find image" in lowered or "pull access" in lowered:
        return fail(f"could not start the client image {cfg.checks.db_client_image}: "
                    f"{_tail(text, 2)}",
                    "let the host pull checks.db_client_image, or point it at an image the "
                    "host has (any image with psql)")
    if "does not support ssl" in lowered:
        fix = "enable TLS on the database server: the app connects with sslmode=require"
    elif "password authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
        fix = (f"check the user and password in {secret}, and that the server admits this "
               "host (pg_hba.conf / trusted sources)")
    elif "does not exist" in lowered:
        fix = f"create the database and user named in {secret}"
    else:
        fix = (f"allow this host's address in the database's firewall or trusted sources, "
               f"and check host and port in {secret}")
    return fail(f"not reachable from the host: {_tail(text, 2)}", fix)


def check_healthcheck(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    """Can the web healthcheck run in the image the host runs? (A missing program: no
    container would ever turn healthy.)"""
    from fabfile import healthcheck

    host = _need(hf)
    probe = _probe(host, "healthcheck")
    if probe is None:
        return fail("no answer from the host's facts script")
    problem = _docker_problem(_probe(host, "docker"), host.host.user)
    if problem:
        return fail("cannot run it: the host's Docker does not work", problem.fix)
    lines = probe.text.splitlines()
    image = next((line.removeprefix("image ") for line in lines if line.startswith("image ")),
                 cfg.image_ref)
    check = healthcheck.probe(cfg)
    if "@probe no-image" in lines:
        return skip(f"{image} is not on the host yet (a deploy pulls it and checks then)")
    error = next((line for line in lines if line.startswith("@error health-missing")), None)
    if error is not None:
        output = "\n".join(line.removeprefix("@log ") for line in lines
                           if line.startswith("@log "))
        program = healthcheck.missing_program(output, check)
        return fail(f"`{program}` is not in {image}: the web healthcheck "
                    f"(`{' '.join(check.argv)}`) can never pass there",
                    f"set app.healthcheck.command to a check the image can run, or add "
                    f"`{program}` to the image")
    if any(line.startswith("@probe passed") for line in lines):
        return ok(f"its program runs in {image}")
    return fail(f"could not tell: {_tail(probe.text, 2)}")


def check_bucket(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    backup = cfg.backup
    if backup is None:
        return skip("no backup section in this environment")
    where = f"s3://{backup.bucket} at {backup.endpoint_url or 'AWS ' + backup.region}"
    missing = _unset_outcome(cfg, *_backup_keys(backup))
    if missing:
        return missing
    fact = facts.bucket
    if fact is None:
        return fail("not looked at")
    if fact.code is None:
        return ok(f"{where} reachable with the configured credentials")
    key = backup.access_key_id.name if backup.access_key_id else "the default AWS credentials"
    if fact.code in ("404", "NoSuchBucket", "NotFound"):
        fix = f"create the bucket: inv backup.setup --env={cfg.env}"
        return fail(f"{where} does not exist", fix)
    if fact.code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return fail(f"{where}: access denied ({fact.code})",
                    f"grant s3:ListBucket, s3:GetObject and s3:PutObject on the bucket to "
                    f"{key}, or correct the keys")
    return fail(f"{where}: {fact.message or fact.code}",
                "check backup.endpoint_url and backup.region, and that this machine "
                "reaches the endpoint")


def check_registry(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    reg = cfg.registry
    if reg is None:
        return skip("no registry: the images are public")
    missing = _unset_outcome(cfg, reg.password)
    if missing:
        return missing
    fact = facts.registry
    if fact is None:
        return fail("not looked at")
    if fact.error is not None:
        return fail(fact.error)
    who = f" as {reg.username}" if reg.username else ""
    return ok(f"{reg.server} lets this machine read {cfg.app.image}{who} ({fact.tags} tags)")


def check_backup_age(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if cfg.backup is None:
        return skip("no backup section in this environment")
    missing = _unset_outcome(cfg, *_backup_keys(cfg.backup))
    if missing:
        return missing
    fact = facts.backup_age
    if fact is None:
        return fail("not looked at")
    if fact.unavailable:
        return skip(f"cannot check here: {fact.unavailable}")
    if fact.error:
        return fail(f"could not list backups: {fact.error}")
    limit = cfg.checks.max_backup_age_hours
    if fact.age is None:
        return fail("no complete backup (one with a manifest) found",
                    f"run inv backup.create --env={cfg.env}, and check that the scheduled "
                    "backup workflow runs")
    hours = fact.age.total_seconds() / 3600
    if hours > limit:
        return fail(f"the newest complete backup is {hours:.1f} hours old (limit {limit:g})",
                    "check the scheduled backup workflow's recent runs, then run "
                    f"inv backup.create --env={cfg.env}")
    return ok(f"the newest complete backup is {hours:.1f} hours old")


def check_certificates(facts: Facts, cfg: Config, hf: HostFacts | None) -> Outcome:
    if not cfg.traefik.enabled:
        return skip("Traefik is disabled in this environment")
    host = _need(hf)
    if not host.certs:
        return skip("no domains configured")
    warn = cfg.checks.cert_warn_days
    good, bad = [], []
    for report in host.certs:
        problems = certs.assess(report, warn, facts.now)
        if problems:
            bad.append(f"{report.endpoint.name}: {'; '.join(problems)}")
        else:
            good.append(f"{report.endpoint.name}: {report.days_left(facts.now)} days left "
                        f"({report.issuer})")
    if bad:
        return fail("; ".join(bad))
    return ok("; ".join(good))


CHECKS: tuple[Check, ...] = (
    Check("ssh", "host", check_ssh, "check hosts[] in the environment's YAML", remote=True),
    Check("docker", "host", check_docker,
          f"install or upgrade Docker Engine: {DOCKER_INSTALL}", remote=True),
    Check("compose", "host", check_compose,
          "upgrade the Docker Compose v2 plugin (docker-compose-plugin)", remote=True),
    Check("swarm", "host", check_swarm, "run `inv setup` for the environment",
          remote=True),
    Check("disk", "host", check_disk,
          "free space (docker system prune, old releases, backup cache) or grow the disk; "
          "the threshold is checks.min_free_disk_gb", remote=True),
    Check("ports", "host", check_ports,
          "stop what holds the port: Traefik needs 80 and 443 for HTTP, HTTPS and ACME "
          "challenges", remote=True),
    Check("dns", "env", check_dns, "point each domain's A/AAAA records at a host",
          reads_facts=True),
    Check("healthcheck", "host", check_healthcheck,
          "set app.healthcheck.command to a check the image can run", remote=True),
    Check("database", "host", check_database,
          "check the database URL and that the server admits this host", remote=True),
    Check("bucket", "env", check_bucket, "check the backup section and its credentials"),
    Check("registry", "env", check_registry,
          "check registry.server, the credentials' secret and that the token may read the "
          "image (deploys need it)"),
    Check("backup-age", "env", check_backup_age,
          "check the scheduled backups; the limit is checks.max_backup_age_hours"),
    Check("certificates", "host", check_certificates, certs.RENEWAL_FIX),
)
CHECK_NAMES = tuple(check.name for check in CHECKS)


def evaluate(facts: Facts, cfg: Config, selected: Iterable[str] = CHECK_NAMES) -> list[Result]:
    """Judge the facts: one result per check and target, in `CHECKS` order."""
    wanted = set(selected)
    results: list[Result] = []
    for check in CHECKS:
        if check.name not in wanted:
            continue
        if check.scope == "env":
            outcomes = [(f"{cfg.project}/{cfg.env}", check.evaluate(facts, cfg, None))]
        else:
            outcomes = [(hf.host.label, _host_outcome(check, facts, cfg, hf))
                        for hf in facts.hosts]
        for target, outcome in outcomes:
            fix = (outcome.fix or check.fix) if outcome.status == "fail" else None
            results.append(Result(check.name, target, outcome.status, outcome.detail, fix))
    return results


def _host_outcome(check: Check, facts: Facts, cfg: Config, hf: HostFacts) -> Outcome:
    if check.remote and check.name != "ssh" and hf.ssh_error is not None:
        return skip("not checked: no SSH session")
    return check.evaluate(facts, cfg, hf)


# ---------------------------------------------------------------------------------------------
# Gathering the facts (I/O)


def service_file(url: str) -> bytes:
    """A libpq service file `[doctor]` holding the connection parameters of `url`."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise UserError(f"the database URL cannot be parsed: {redact(str(exc))}") from None
    params.setdefault("connect_timeout", "10")
    params["application_name"] = "shipyard-doctor"
    lines = ["[doctor]"]
    for key, value in params.items():
        text = str(value)
        if "\n" in text or "\r" in text:
            raise UserError(f"the database URL's {key} contains a line break")
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode()


def facts_step(cfg: Config, *, database: bool, health: bool = True) -> Step:
    """The one remote command that gathers a host's facts."""
    from fabfile.deploy import rollout

    probe_db = database and cfg.database.url is not None and not cfg.database.url.placeholder
    backup_dir = cfg.backup.cache_dir if cfg.backup else ""
    image = cfg.checks.db_client_image if probe_db else ""
    stdin = service_file(cfg.database.url.reveal()) if probe_db and cfg.database.url else b""
    cache, app_image, spec = rollout.probe_args(cfg, cfg.image_ref)
    return SCRIPTS.step("gather host facts", "facts", cfg.deploy.app_dir, backup_dir, image,
                        SCRIPTS.body("pg_probe"), cfg.project, cfg.app.name, app_image, cache,
                        spec if health else "", stdin=stdin, check=False, timeout=180.0)


def resolve(name: str) -> tuple[str, ...] | str:
    """The addresses `name` resolves to here, or why it does not resolve."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    seen: dict[str, None] = {}
    for info in infos:
        address = _ip(str(info[4][0]))
        if address:
            seen[address] = None
    return tuple(seen)


def probe_bucket(backup: Backup) -> BucketFact:
    """head_bucket with the environment's endpoint and keys, checksums only when required."""
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=backup.endpoint_url,
        region_name=backup.region,
        aws_access_key_id=backup.access_key_id.reveal() if backup.access_key_id else None,
        aws_secret_access_key=(backup.secret_access_key.reveal()
                               if backup.secret_access_key else None),
        config=BotoConfig(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required",
                          connect_timeout=5, read_timeout=15,
                          retries={"max_attempts": 2, "mode": "standard"}),
    )
    try:
        client.head_bucket(Bucket=backup.bucket)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return BucketFact(str(error.get("Code", "error")), redact(str(error.get("Message", ""))))
    except BotoCoreError as exc:
        return BucketFact(type(exc).__name__, redact(str(exc)))
    return BucketFact()


def probe_registry(cfg: Config) -> RegistryFact:
    """List the image's tags: the credentials work and may read it."""
    from fabfile import registry

    try:
        return RegistryFact(tags=len(registry.tags(cfg)))
    except UserError as exc:
        return RegistryFact(error=exc.message)


def probe_backup_age(cfg: Config) -> BackupAgeFact:
    """Ask the backup engine for the age of the newest complete backup."""
    try:
        module = importlib.import_module("fabfile.backup")
    except ImportError:
        return BackupAgeFact(unavailable="this version has no backup engine (fabfile.backup)")
    newest = getattr(module, "newest_complete_age", None)
    if newest is None:
        return BackupAgeFact(unavailable="fabfile.backup has no newest_complete_age()")
    try:
        age = newest(cfg)
    except UserError as exc:
        return BackupAgeFact(error=exc.message)
    except Exception as exc:
        return BackupAgeFact(error=redact(f"{type(exc).__name__}: {exc}"))
    return BackupAgeFact(age=age)


def host_facts(cfg: Config, host: Host, *, selected: set[str],
               ca_file: str | None, timeout: float) -> HostFacts:
    """Everything known about one host: its facts script, its name's addresses, its certs."""
    ssh_error: str | None = None
    probes: dict[str, Probe] = {}
    if any((c.remote or c.reads_facts) and c.name in selected for c in CHECKS):
        transport = connect(host)
        try:
            result = transport.probe(facts_step(cfg, database="database" in selected,
                                                health="healthcheck" in selected))
            probes = parse_probes(result.stdout)
            if not probes:
                ssh_error = (f"the facts script gave no answer (exit {result.exit_code}): "
                             f"{_tail(result.stderr or result.stdout, 2)}")
        except UserError as exc:
            ssh_error = exc.message
        finally:
            transport.close()
    resolved = resolve(host.address) if "dns" in selected else ()
    reports: list[certs.CertReport] = []
    if "certificates" in selected and cfg.traefik.enabled:
        reports = certs.probe_all(certs.on_host(cfg.domains, host.address),
                                  ca_file=ca_file, timeout=timeout)
    return HostFacts(host, ssh_error, probes,
                     resolved if isinstance(resolved, tuple) else (), tuple(reports))


def gather(cfg: Config, *, selected: Iterable[str] = CHECK_NAMES, ca_file: str | None = None,
           timeout: float = 10.0) -> Facts:
    """Gather every fact the selected checks need, hosts and local probes concurrently."""
    wanted = set(selected)
    ca = ca_file or cfg.checks.ca_file
    with ThreadPoolExecutor(max_workers=4 + len(cfg.hosts)) as pool:
        hosts = [pool.submit(host_facts, cfg, host, selected=wanted, ca_file=ca, timeout=timeout)
                 for host in cfg.hosts]
        dns: dict[str, Future[tuple[str, ...] | str]] = {}
        if "dns" in wanted and cfg.traefik.enabled:
            dns = {domain: pool.submit(resolve, domain) for domain in cfg.domains}
        s3 = cfg.backup is not None and not unset(*_backup_keys(cfg.backup))
        bucket = (pool.submit(probe_bucket, cfg.backup)
                  if "bucket" in wanted and cfg.backup and s3 else None)
        age = pool.submit(probe_backup_age, cfg) if "backup-age" in wanted and s3 else None
        reg = cfg.registry
        listed = (pool.submit(probe_registry, cfg) if "registry" in wanted and reg is not None
                  and not unset(reg.password) else None)
        return Facts(
            hosts=tuple(f.result() for f in hosts),
            dns={domain: f.result() for domain, f in dns.items()},
            bucket=bucket.result() if bucket else None,
            backup_age=age.result() if age else None,
            registry=listed.result() if listed else None,
        )


def run(cfg: Config, *, selected: Iterable[str] = CHECK_NAMES, ca_file: str | None = None,
        timeout: float = 10.0) -> list[Result]:
    """Gather, then judge."""
    chosen = tuple(selected)
    return evaluate(gather(cfg, selected=chosen, ca_file=ca_file, timeout=timeout), cfg, chosen)
