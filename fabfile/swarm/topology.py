"""Which hosts do what in a swarm, and what the config must say for `deploy.engine: swarm`.

The first manager listed is the *control* manager: deploys talk to the swarm through it, it
holds the deploy lock, the releases and the audit log, and Traefik is pinned to it (its Let's
Encrypt storage, `acme.json`, lives there). `problems` is the validation the loader runs.
"""

from __future__ import annotations

import ipaddress

from fabfile.config import Config, Host

Path = tuple[str, ...]

SECRET_KEYS = ("DATABASE_URL", "SENTRY_DSN")
"""Keys of the rendered `app.env` that are secrets (besides `app.secret_env`'s)."""


def is_swarm(cfg: Config) -> bool:
    return cfg.deploy.engine == "swarm"


def managers(cfg: Config) -> tuple[Host, ...]:
    return tuple(h for h in cfg.hosts if h.role == "manager")


def workers(cfg: Config) -> tuple[Host, ...]:
    return tuple(h for h in cfg.hosts if h.role == "worker")


def control(cfg: Config) -> Host:
    """The host a deploy talks to: the first manager (swarm), else the first host."""
    found = managers(cfg) if is_swarm(cfg) else ()
    return found[0] if found else cfg.hosts[0]


def advertise(host: Host) -> str:
    """The address other nodes reach `host` at."""
    return host.advertise_address or host.address


def node_label(cfg: Config, what: str) -> str:
    """The node label placing this environment's services: `<project>.app`, `<project>.edge`."""
    return f"{cfg.project}.{what}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def problems(cfg: Config) -> list[tuple[Path, str]]:
    """What keeps this topology from working, as (key path, what was expected) pairs."""
    found: list[tuple[Path, str]] = []
    if not is_swarm(cfg):
        for i, host in enumerate(cfg.hosts):
            if host.role is not None or host.advertise_address is not None or host.labels:
                found.append((("hosts", str(i)), "no role, advertise_address or labels when "
                              "deploy.engine is compose (they describe swarm nodes)"))
        return found
    seen: dict[str, int] = {}
    for i, host in enumerate(cfg.hosts):
        where = ("hosts", str(i))
        if host.role is None:
            found.append(((*where, "role"), "manager or worker for each host when "
                          "deploy.engine is swarm"))
        if host.transport != "ssh":
            found.append(((*where, "transport"), "ssh: swarm nodes are reached over SSH"))
        address = advertise(host)
        if not _is_ip(address):
            found.append(((*where, "advertise_address"), "the IP address the other nodes reach "
                          f"{host.address} at (its address is not an IP, so it cannot be "
                          "the default)"))
        elif address in seen:
            found.append(((*where, "advertise_address"), f"an address of its own ({address} is "
                          f"also hosts.{seen[address]}'s)"))
        seen.setdefault(address, i)
    count = len(managers(cfg))
    if count == 0:
        found.append((("hosts",), "at least one host with role: manager (the swarm's control "
                      "plane; deploys go through the first one)"))
    elif count % 2 == 0:
        found.append((("hosts",), f"an odd number of managers, 1, 3 or 5 (got {count}): the "
                      "managers' Raft log needs a majority, so 2 managers survive no loss "
                      "(like 1) and 4 survive one (like 3), with more ways to lose the quorum"))
    db = cfg.database
    if db.backend == "sqlite":
        found.append((("database", "backend"), "postgres when deploy.engine is swarm: a SQLite "
                      "file lives on one host, the app's tasks run on several (move it with "
                      "`inv db.cutover` on compose first)"))
    if db.local is not None:
        found.append((("database", "local"), "a managed database (database.url) when "
                      "deploy.engine is swarm: every node must reach it"))
    if not cfg.app.command:
        found.append((("app", "command"), "the app's command as its image runs it (ENTRYPOINT "
                      "and CMD), e.g. [uvicorn, app.main:app, --host, 0.0.0.0, --port, '8000'], "
                      "when deploy.engine is swarm: tasks run it under an entrypoint that keeps "
                      "serving after SIGTERM until Traefik's Swarm provider stops routing there"))
    return found
