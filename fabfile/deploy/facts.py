"""What a host looks like, gathered in one command (`scripts/facts.sh`) and parsed purely.

The report is line-oriented: `KEY VALUE...`, with file contents and JSON in base64 so that
nothing a file holds can break the format. `parse` turns it into `Facts`; `require_ready`
turns a host that cannot take a deploy into one message saying what to do.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.heal.facts import Restarts, Watcher, parse_restarts, parse_watcher
from fabfile.remote import Step

from . import scripts
from .lock import Liveness, TakenOver

MIN_DOCKER = (20, 10)
MIN_COMPOSE = (2, 20)
LockState = Literal["taken", "held", "free", "unwritable", "unknown"]


@dataclass(frozen=True)
class Container:
    """One container of the Compose project, as `docker inspect` describes it."""

    id: str
    service: str
    oneoff: bool
    state: str
    health: str
    started_at: str
    name: str
    image: str
    config_file: str

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def serving(self) -> bool:
        """Running and healthy (or without a healthcheck): what a proxy routes to."""
        return self.state == "running" and self.health in ("healthy", "none")

    @property
    def release(self) -> str | None:
        """The release whose compose.yml created it (Compose records the file's path)."""
        match = re.search(r"/releases/([^/]+)/compose\.yml$", self.config_file)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Page:
    """The maintenance page container (`<project>-maintenance`), when there is one."""

    state: str
    health: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def manual(self) -> bool:
        """Put up by `inv maintenance.on` (not by a cutover or a restore)."""
        return self.labels.get("shipyard.maintenance") == "manual"

    @property
    def up(self) -> bool:
        return self.state == "running"

    def label(self, key: str) -> str:
        return self.labels.get(f"shipyard.maintenance.{key}", "")


@dataclass(frozen=True)
class Release:
    id: str
    live: bool


@dataclass(frozen=True)
class FileFact:
    sha256: str
    mode: int


@dataclass(frozen=True)
class Facts:
    """One host's state. `files`, `contents` and `env_lines` describe the current release."""

    docker: str | None = None
    docker_error: str | None = None
    compose: str | None = None
    app_dir: bool = False
    disk_free_kb: int | None = None
    lock: LockState = "unknown"
    holder: dict[str, Any] | None = None
    liveness: Liveness | None = None
    """How the lock looks when another run holds it (its heartbeats)."""
    taken_over: TakenOver | None = None
    """The stale lock this run took over, when it did."""
    network: bool = False
    releases: tuple[Release, ...] = ()
    current: str | None = None
    files: dict[str, FileFact] = field(default_factory=dict)
    contents: dict[str, str] = field(default_factory=dict)
    env_lines: dict[str, dict[str, str]] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()
    images: dict[str, bool] = field(default_factory=dict)
    last_audit: dict[str, Any] | None = None
    database_backend: str | None = None
    """What `{app_dir}/database-backend` says (`postgres` once `db.cutover` succeeded)."""
    sqlite_releases: frozenset[str] = frozenset()
    """Releases whose app.env points the app at SQLite (made before a cutover)."""
    watcher: Watcher | None = None
    """The self-healing watcher installed on the host, if any."""
    restarts: dict[str, Restarts] = field(default_factory=dict)
    """Container id -> its restarts (Docker's after a crash, the watcher's after a hang)."""
    maintenance: Page | None = None

    @property
    def in_maintenance(self) -> bool:
        """An operator's maintenance page is up (`inv maintenance.on`)."""
        return self.maintenance is not None and self.maintenance.up and self.maintenance.manual

    def service(self, name: str) -> tuple[Container, ...]:
        """The service's long-running containers (one-off `run` containers left out)."""
        return tuple(c for c in self.containers if c.service == name and not c.oneoff)

    @property
    def release_ids(self) -> tuple[str, ...]:
        return tuple(sorted(r.id for r in self.releases))


def gather_step(cfg: Config, *, take_lock: bool, lock_wait: float = 0, holder_json: str = "",
                token: str = "", images: Iterable[str] = (), takeover_audit: str = "") -> Step:
    """The one command that reports a host's facts (and takes its lock when `take_lock`;
    with `takeover_audit`, the audit line, it takes over a stale deploy's lock)."""
    title = "take the lock and gather facts" if take_lock else "gather facts"
    mode = ("take-over" if takeover_audit else "take") if take_lock else "read"
    return scripts.step(
        title, "facts", cfg.deploy.app_dir, cfg.project, cfg.deploy.network, mode,
        str(int(lock_wait)), holder_json, token, str(cfg.deploy.lock_stale_after),
        takeover_audit, *images, timeout=lock_wait + 60)


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise UserError("the host's facts report is garbled (bad base64): is the host's "
                        "shell or base64 unusual? Run the facts script by hand to see") from None


def _json(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_b64(text))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def parse(report: str) -> Facts:
    """Parse `facts.sh` output; raise UserError when it is cut short or not a facts report."""
    lines = report.splitlines()
    if "@facts 1" not in lines or "@end" not in lines:
        tail = redact(" | ".join(line for line in lines[-3:] if line.strip())[-400:])
        raise UserError("the host did not return a complete facts report (last lines: "
                        f"{tail or 'no output'}): is `sh` a POSIX shell there?")
    values: dict[str, Any] = {}
    releases: list[Release] = []
    files: dict[str, FileFact] = {}
    contents: dict[str, str] = {}
    env_lines: dict[str, dict[str, str]] = {}
    containers: list[Container] = []
    images: dict[str, bool] = {}
    sqlite_releases: set[str] = set()
    restarts: dict[str, Restarts] = {}
    life: dict[str, Any] = {}
    dead: dict[str, Any] = {}
    for line in lines[lines.index("@facts 1") + 1:]:
        if line == "@end":
            break
        key, _, rest = line.partition(" ")
        if key == "docker":
            values["docker"] = None if rest == "missing" else rest
        elif key == "docker_error":
            values["docker_error"] = _b64(rest).strip()
        elif key == "compose":
            values["compose"] = None if rest in ("missing", "") else rest.lstrip("v")
        elif key == "app_dir":
            values["app_dir"] = rest == "present"
        elif key == "disk_free_kb":
            values["disk_free_kb"] = int(rest) if rest.isdigit() else None
        elif key == "lock":
            if rest == "taken-over":
                rest = "taken"
                dead["holder"] = None
            values["lock"] = rest if rest in ("taken", "held", "free", "unwritable") else "unknown"
        elif key == "dead_holder":
            dead["holder"] = _json(rest)
        elif key == "dead_age":
            dead["stale_for"] = int(rest) if rest.isdigit() else None
        elif key == "lock_age":
            life["age"] = int(rest) if rest.lstrip("-").isdigit() else None
        elif key == "lock_stale":
            life["stale"] = rest == "1"
        elif key in ("lock_client", "lock_phase"):
            life[key.removeprefix("lock_")] = _b64(rest).strip() or None
        elif key == "holder":
            values["holder"] = _json(rest)
        elif key == "network":
            values["network"] = rest == "present"
        elif key == "release":
            rid, _, kind = rest.rpartition(" ")
            releases.append(Release(rid, kind == "live"))
        elif key == "release_db":
            sqlite_releases.add(rest.rpartition(" ")[0])
        elif key == "current":
            values["current"] = rest
        elif key == "file":
            digest, mode, path = rest.split(" ", 2)
            files[path] = FileFact(digest, int(mode, 8))
        elif key == "content":
            data, _, path = rest.partition(" ")
            contents[path] = _b64(data)
        elif key == "envline":
            name, digest, path = rest.split(" ", 2)
            env_lines.setdefault(path, {})[name] = digest
        elif key == "container":
            parts = rest.split(" ", 8)
            if len(parts) < 8:
                continue
            cid, service, oneoff, state, health, started, name, image = parts[:8]
            containers.append(Container(
                id=cid, service=service, oneoff=oneoff == "True", state=state, health=health,
                started_at=started, name=name.lstrip("/"), image=image,
                config_file=parts[8] if len(parts) > 8 else ""))
        elif key == "image":
            status, _, ref = rest.partition(" ")
            images[ref] = status == "present"
        elif key == "database_backend":
            values["database_backend"] = rest or None
        elif key == "audit":
            values["last_audit"] = _json(rest)
        elif key == "maintenance":
            values["maintenance"] = _page(_b64(rest))
        elif key == "watcher":
            values["watcher"] = parse_watcher(rest)
        elif key == "restarts" and (found := parse_restarts(rest)):
            restarts[found[0]] = found[1]
    if life:
        values["liveness"] = Liveness(**life)
    if dead:
        values["taken_over"] = TakenOver(dead.get("holder"), dead.get("stale_for"))
    return Facts(releases=tuple(sorted(releases, key=lambda r: r.id)), files=files,
                 contents=contents, env_lines=env_lines, containers=tuple(containers),
                 images=images, sqlite_releases=frozenset(sqlite_releases), restarts=restarts,
                 **values)


def _page(text: str) -> Page:
    state, health, labels = [*text.strip().split(" ", 2), "", "", ""][:3]
    try:
        data = json.loads(labels) if labels else {}
    except json.JSONDecodeError:
        data = {}
    return Page(state, health, {str(k): str(v) for k, v in (data or {}).items()})


def version_tuple(text: str | None) -> tuple[int, ...]:
    """`20.10.24+dfsg1` -> (20, 10, 24); unparseable -> ()."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


INSTALL_DOCKER = ("install Docker Engine (Debian/Ubuntu: `apt-get install docker.io`, or "
                  "Docker's own packages: https://docs.docker.com/engine/install/)")


def engine_problem(docker: str | None, docker_error: str | None, host: str,
                   user: str) -> str | None:
    """Why this host's Docker Engine cannot be used (missing, stopped, forbidden, too old),
    with the fix; None when it can."""
    if docker_error is not None:
        err = docker_error
        if "permission denied" in err.lower():
            return (f"user {user} on {host} may not use Docker ({err.splitlines()[-1]}): add it "
                    f"to the docker group (`sudo usermod -aG docker {user}`) and reconnect")
        if "cannot connect" in err.lower() or "is the docker daemon running" in err.lower():
            return (f"the Docker daemon on {host} is not running: start it "
                    "(`sudo systemctl enable --now docker`)")
        return f"`docker version` fails on {host}: {err}"
    if docker is None:
        return f"Docker is not installed on {host}: {INSTALL_DOCKER}"
    found = version_tuple(docker)
    if found and found < MIN_DOCKER:
        return (f"Docker Engine {docker} on {host} is too old (need "
                f"{_dotted(MIN_DOCKER)} or newer): {INSTALL_DOCKER}")
    return None


def docker_problem(facts: Facts, host: str, user: str) -> str | None:
    """Why this host cannot run the stack's Docker commands, with the fix; None when it can."""
    compose_fix = ("install the Compose v2 plugin (`apt-get install docker-compose-plugin` from "
                   "Docker's repository, or Debian 13's `docker-compose` package); the old "
                   "Python `docker-compose` v1 does not work")
    problem = engine_problem(facts.docker, facts.docker_error, host, user)
    if problem:
        return problem
    if facts.compose is None:
        return f"Docker Compose v2 (`docker compose`) is missing on {host}: {compose_fix}"
    compose = version_tuple(facts.compose)
    if not compose or compose < MIN_COMPOSE:
        return (f"Docker Compose {facts.compose} on {host} is too old (need "
                f"{_dotted(MIN_COMPOSE)} or newer for `up --wait --wait-timeout`): {compose_fix}")
    return None


def require_ready(facts: Facts, cfg: Config, host: str, user: str) -> None:
    """Raise one UserError naming what keeps this host from taking a deploy, and the fix."""
    problem = docker_problem(facts, host, user)
    if problem:
        raise UserError(problem)
    setup = f"run `inv setup --env={cfg.env}` first"
    if not facts.app_dir:
        raise UserError(f"{cfg.deploy.app_dir} does not exist on {host}: {setup}")
    if not facts.network:
        raise UserError(f"the Docker network {cfg.deploy.network!r} does not exist on {host}: "
                        f"{setup}")
    if facts.lock == "unwritable":
        raise UserError(f"user {user} cannot write to {cfg.deploy.app_dir} on {host}: make "
                        f"it the owner (`sudo chown -R {user} {cfg.deploy.app_dir}`)")
    if cfg.database.backend == "sqlite" and facts.database_backend == "postgres":
        raise UserError(f"{host} was cut over to PostgreSQL ({cfg.deploy.app_dir}/"
                        "database-backend says postgres), but the config still says "
                        "database.backend: sqlite; deploying it would put the app back on its "
                        "stale SQLite file. Cutover done: set database.backend: postgres in "
                        f"environments/{cfg.env}.yaml")
