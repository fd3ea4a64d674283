"""What a swarm looks like, gathered in one command and parsed purely.

`gather_step` runs on the control manager: the host's own facts first (`deploy/scripts/
facts.sh`: the lock, the releases, `current`), then the swarm's (`scripts/facts.sh`: nodes,
the stack's services, their tasks, secrets and configs). `node_step` is `inv setup`'s look
at one host (engine, swarm membership, listeners). Both parse into frozen dataclasses;
`require_ready` turns a manager that cannot take a deploy into one message with the fix.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.deploy import facts as host_facts
from fabfile.errors import UserError
from fabfile.remote import Step, script

from . import scripts


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _labels(text: str) -> dict[str, str]:
    try:
        data = json.loads(text) if text and text != "null" else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Node:
    """A swarm node as `docker node inspect` describes it."""

    id: str
    role: str
    state: str
    availability: str
    addr: str
    reachability: str
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class Task:
    """One task of a service: where it runs, what it should be and what it is."""

    id: str
    service_id: str
    slot: str
    node_id: str
    desired: str
    state: str
    image: str
    error: str = ""


@dataclass(frozen=True)
class Service:
    """A service of the stack, with the state of its last update."""

    id: str
    name: str
    image: str
    replicas: int | None
    update_state: str
    update_message: str = ""


@dataclass(frozen=True)
class SwarmFacts:
    """The swarm as its control manager sees it (`nodes` etc. are empty unless `manager`)."""

    state: str = "unknown"
    manager: bool = False
    node_id: str = ""
    cluster_id: str = ""
    nodes: tuple[Node, ...] = ()
    services: tuple[Service, ...] = ()
    tasks: tuple[Task, ...] = ()
    secrets: frozenset[str] = frozenset()
    configs: frozenset[str] = frozenset()

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def tasks_of(self, name: str, *, desired: str | None = "running") -> tuple[Task, ...]:
        """The service's tasks (those meant to run, by default), by slot."""
        svc = self.service(name)
        if svc is None:
            return ()
        found = [t for t in self.tasks if t.service_id == svc.id
                 and (desired is None or t.desired == desired)]
        return tuple(sorted(found, key=lambda t: (t.slot.zfill(6), t.id)))

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def hostname(self, node_id: str) -> str:
        node = self.node(node_id)
        return node.hostname if node else (node_id[:12] or "unassigned")


def parse(report: str) -> SwarmFacts:
    """Parse the swarm part of the gather report (`@swarm 1` ... `@swarm-end`)."""
    lines = report.splitlines()
    if "@swarm 1" not in lines or "@swarm-end" not in lines:
        tail = redact(" | ".join(line for line in lines[-3:] if line.strip())[-400:])
        raise UserError(f"the manager did not return a complete swarm report (last lines: "
                        f"{tail or 'no output'})")
    values: dict[str, object] = {}
    nodes: list[Node] = []
    services: list[Service] = []
    messages: dict[str, str] = {}
    tasks: list[Task] = []
    secrets: set[str] = set()
    configs: set[str] = set()
    for line in lines[lines.index("@swarm 1") + 1:]:
        if line == "@swarm-end":
            break
        key, _, rest = line.partition(" ")
        parts = rest.split(" ")
        if key == "swarm":
            state, control_available, node_id, cluster = [*parts, "", "", "", ""][:4]
            values.update(state=state or "unknown", manager=control_available == "true",
                          node_id=node_id, cluster_id=cluster)
        elif key == "node" and len(parts) >= 7:
            nodes.append(Node(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5],
                              parts[6], _labels(" ".join(parts[7:]))))
        elif key == "service" and len(parts) >= 5:
            replicas = int(parts[3]) if parts[3].isdigit() else None
            services.append(Service(parts[0], parts[1], parts[2], replicas, parts[4]))
        elif key == "update_message" and len(parts) == 2:
            messages[parts[0]] = _b64(parts[1])
        elif key == "task" and len(parts) >= 7:
            tasks.append(Task(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5],
                              parts[6], _b64(parts[7]) if len(parts) > 7 else ""))
        elif key == "secret" and parts[0]:
            secrets.add(parts[0])
        elif key == "config" and parts[0]:
            configs.add(parts[0])
    services = [Service(s.id, s.name, s.image, s.replicas, s.update_state,
                        messages.get(s.id, "")) for s in services]
    return SwarmFacts(nodes=tuple(nodes), services=tuple(services), tasks=tuple(tasks),
                      secrets=frozenset(secrets), configs=frozenset(configs),
                      **values)  # type: ignore[arg-type]


def gather_step(cfg: Config, *, take_lock: bool, lock_wait: float = 0, holder_json: str = "",
                token: str = "") -> Step:
    """The one command reporting the control manager's facts and the swarm's (taking the
    deploy lock when `take_lock`)."""
    own = host_facts.gather_step(cfg, take_lock=take_lock, lock_wait=lock_wait,
                                 holder_json=holder_json, token=token)
    facts_args = own.argv[4:]
    title = "take the lock and gather facts" if take_lock else "gather facts"
    return script(title, scripts.body("gather"), scripts.body("facts"), own.argv[2],
                  cfg.project, *facts_args, timeout=lock_wait + 60)


def require_ready(facts: host_facts.Facts, swarm: SwarmFacts, cfg: Config, host: str,
                  user: str) -> None:
    """Raise one UserError naming what keeps the control manager from taking a deploy."""
    problem = host_facts.engine_problem(facts.docker, facts.docker_error, host, user)
    if problem:
        raise UserError(problem)
    setup = f"run `inv setup --env={cfg.env}` first"
    if swarm.state != "active":
        raise UserError(f"{host} is not in a swarm (its swarm state is {swarm.state}): {setup}")
    if not swarm.manager:
        raise UserError(f"{host} is a worker, not a manager, of its swarm: deploys go through "
                        "the first manager of hosts (hosts[].role); fix the roles, or "
                        f"`docker node promote` it, then {setup}")
    if not facts.app_dir:
        raise UserError(f"{cfg.deploy.app_dir} does not exist on {host}: {setup}")
    if not facts.network:
        raise UserError(f"the overlay network {cfg.deploy.network!r} does not exist on "
                        f"{host}: {setup}")
    if facts.lock == "unwritable":
        raise UserError(f"user {user} cannot write to {cfg.deploy.app_dir} on {host}: make "
                        f"it the owner (`sudo chown -R {user} {cfg.deploy.app_dir}`)")


@dataclass(frozen=True)
class NodeFacts:
    """One host as `inv setup` sees it before touching the swarm."""

    docker: str | None = None
    docker_error: str | None = None
    state: str = "unknown"
    manager: bool = False
    node_id: str = ""
    cluster_id: str = ""
    addr: str = ""
    managers: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    """The swarm's node ids (a manager knows them; a worker does not even know its cluster)."""
    error: str = ""
    listeners: dict[int, str] = field(default_factory=dict)


def node_step(ports: tuple[int, ...] = ()) -> Step:
    return scripts.step("look at the host", "node", *map(str, ports), timeout=60)


def parse_node(report: str) -> NodeFacts:
    lines = report.splitlines()
    if "@node 1" not in lines or "@end" not in lines:
        tail = redact(" | ".join(line for line in lines[-3:] if line.strip())[-400:])
        raise UserError(f"the host did not return a complete report (last lines: "
                        f"{tail or 'no output'})")
    values: dict[str, object] = {}
    listeners: dict[int, str] = {}
    for line in lines[lines.index("@node 1") + 1:lines.index("@end")]:
        key, _, rest = line.partition(" ")
        parts = rest.split()
        if key == "docker":
            values["docker"] = None if rest == "missing" else rest
        elif key == "docker_error":
            values["docker_error"] = _b64(rest).strip() or "unknown error"
        elif key == "swarm" and len(parts) == 5:
            values.update(state=parts[0], manager=parts[1] == "true",
                          node_id=parts[2].strip("-"), cluster_id=parts[3].strip("-"),
                          addr=parts[4].strip("-"))
        elif key == "managers":
            values["managers"] = tuple(p.rsplit(":", 1)[0] for p in parts)
        elif key == "nodes":
            values["nodes"] = tuple(parts)
        elif key == "swarm_error":
            values["error"] = _b64(rest)
        elif key == "listen" and parts and parts[0].isdigit():
            listeners[int(parts[0])] = parts[1].rstrip(",") if len(parts) > 1 else "unknown"
    return NodeFacts(listeners=listeners, **values)  # type: ignore[arg-type]

