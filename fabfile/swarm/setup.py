"""`inv setup` for `deploy.engine: swarm`: form the swarm the config describes, idempotently.

1. Look at every host at once (one command each): engine, swarm membership, and on the
   control manager what holds ports 80 and 443. Anything that stops the setup (an engine
   missing, a host in another swarm, a port taken) is reported for every host at once, before
   anything changes.
2. Initialise the swarm on the control manager unless it is in it already.
3. Join the other hosts, each with the join token of its role, read from the manager just
   before and handed to the host on stdin: never printed, never written to disk. A host that
   cannot reach the manager's advertise address is named with the ports to open.
4. Promote or demote joined nodes whose role differs from the config.
5. On the manager: the overlay network, the node labels that place the services
   (`<project>.app` on every host, `<project>.edge` on the manager Traefik is pinned to,
   plus `hosts[].labels`), the app's directory tree and `acme.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabfile import ui
from fabfile.config import Config, Host
from fabfile.config.secrets import Secret
from fabfile.deploy import facts as host_facts
from fabfile.deploy import rollout
from fabfile.deploy import scripts as deploy_scripts
from fabfile.errors import UserError
from fabfile.remote import Step, Transport, connect, on_all

from . import scripts
from .facts import NodeFacts, node_step, parse_node
from .topology import advertise, control, node_label

SWARM_PORTS = "2377/tcp (cluster management), 7946/tcp and udp (gossip), 4789/udp (overlay)"
WEB_PORTS = (80, 443)


@dataclass
class HostSetup:
    host: Host
    transport: Transport
    facts: NodeFacts | None = None
    done: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.host.label


def _look(cfg: Config, item: HostSetup) -> str | None:
    """Read the host's facts; the reason it cannot take part, or None."""
    edge = item.host == control(cfg) and cfg.traefik.enabled
    try:
        result = item.transport.probe(node_step(WEB_PORTS if edge else ()))
        item.facts = parse_node(result.stdout)
    except UserError as exc:
        return exc.message
    f = item.facts
    return host_facts.engine_problem(f.docker, f.docker_error, item.label, item.host.user)


def _port_problems(cfg: Config, item: HostSetup) -> list[str]:
    assert item.facts is not None
    found = []
    for port, holder in sorted(item.facts.listeners.items()):
        if "docker-proxy" in holder:
            continue
        found.append(f"port {port} on {item.label} is in use by {holder}: Traefik publishes "
                     "80 and 443 on the first manager (host mode). Stop what listens there "
                     f"(e.g. `sudo systemctl disable --now {holder.split(',')[0]}`), or list "
                     "another manager first in hosts")
    return found


def _membership_problems(cfg: Config, items: list[HostSetup]) -> list[str]:
    manager = items[0]
    m = manager.facts
    assert m is not None
    found = []
    if m.state == "active" and not m.manager:
        found.append(f"{manager.label} is a worker of a swarm but comes first among the "
                     "managers in hosts: promote it from a manager (`docker node promote "
                     f"{m.node_id[:12]}`) or fix hosts[].role")
    for item in items:
        f = item.facts
        assert f is not None
        if f.state in ("pending", "error", "locked"):
            found.append(f"{item.label} is in swarm state {f.state}"
                         f"{': ' + f.error if f.error else ''}: fix or leave it "
                         "(`docker swarm leave --force` on it), then run setup again")
        elif item is not manager and f.state == "active" and not _member(f, m):
            others = ", ".join(f.managers) or "unknown managers"
            found.append(f"{item.label} already belongs to another swarm (managers "
                         f"{others}): to move it into this one, run `docker swarm leave "
                         "--force` on it (what that swarm runs there stops), or remove it "
                         "from hosts")
    return found


def _member(host: NodeFacts, manager: NodeFacts) -> bool:
    """Whether `host` is in the swarm `manager` manages."""
    if manager.state != "active":
        return False
    if host.cluster_id and manager.cluster_id:
        return host.cluster_id == manager.cluster_id
    return host.node_id in manager.nodes


def _run(item: HostSetup, step: Step) -> dict[str, list[str]]:
    result = item.transport.probe(step)
    m = rollout.markers(result.stdout)
    if not result.ok:
        raise UserError(_failure(item, m, result.stdout + result.stderr))
    return m


def _failure(item: HostSetup, m: dict[str, list[str]], output: str) -> str:
    error = (m.get("error") or ["?"])[-1]
    tail = " | ".join(line for line in output.splitlines()
                      if line.strip() and not line.startswith("@"))[-300:]
    if error.startswith("unreachable"):
        target = error.split()[1] if len(error.split()) > 1 else "the manager"
        return (f"{item.label} cannot reach the manager's advertise address {target} (TCP): "
                f"open {SWARM_PORTS} between the hosts, and check that the manager's "
                "hosts[].advertise_address is an address the other hosts reach it at")
    if error.startswith("token"):
        return (f"the manager refused the join token {item.label} presented ({tail}): it was "
                "rotated after it was read (`docker swarm join-token --rotate`?). Run setup "
                "again: it reads a fresh one")
    if error.startswith("member"):
        return f"{item.label} joined another swarm meanwhile: {tail}"
    if error.startswith("network-kind"):
        return (f"a network named {error.split()[1]} exists on {item.label} but is not a swarm "
                "overlay network (left by the Compose engine?): remove it (`docker network rm "
                f"{error.split()[1]}`) or set deploy.network to another name")
    return f"setup failed on {item.label}: {error} {tail}".strip()


def _join(cfg: Config, manager: HostSetup, item: HostSetup, tokens: dict[str, Secret]) -> str:
    role = item.host.role or "worker"
    if role not in tokens:
        result = manager.transport.run(Step(
            f"read the {role} join token", ("docker", "swarm", "join-token", "-q", role),
            timeout=60))
        tokens[role] = Secret(f"swarm {role} join token", result.stdout.strip())
    m = _run(item, scripts.step(
        f"join the swarm as a {role}", "join", advertise(manager.host), advertise(item.host),
        stdin=(tokens[role].reveal() + "\n").encode(), timeout=120))
    item.done.append(f"joined the swarm as a {role}")
    return (m.get("joined") or [""])[-1]


def _install(cfg: Config, items: list[HostSetup]) -> None:
    """`setup --install` on every node first: Docker Engine (which holds Swarm) and Compose
    from the distribution's packages, as on a single host (`fabfile.install`)."""
    from fabfile.install import run as installer

    with ui.console.status("installing Docker"):
        done = on_all([i.transport for i in items], lambda t: installer.install(cfg, t))
    for item, changed in zip(items, done, strict=True):
        item.transport.close()
        ui.ok(f"{item.label}: " + (", ".join(changed) or "Docker already installed"))


def setup(cfg: Config, install: bool = False) -> list[HostSetup]:
    first = control(cfg)
    hosts = [first, *(h for h in cfg.hosts if h != first)]
    items = [HostSetup(h, connect(h)) for h in hosts]
    manager = items[0]
    try:
        if install:
            _install(cfg, items)
        by_transport = {id(i.transport): i for i in items}
        with ui.console.status("looking at the hosts"):
            found = on_all([i.transport for i in items],
                           lambda t: _look(cfg, by_transport[id(t)]))
        problems = [p for p in found if p]
        if not problems:
            if cfg.traefik.enabled:
                problems += _port_problems(cfg, manager)
            problems += _membership_problems(cfg, items)
        if problems:
            raise UserError(problems[0] if len(problems) == 1 else
                            "setup cannot go ahead; nothing was changed:\n  "
                            + "\n  ".join(problems))
        m = _run(manager, scripts.step("initialise the swarm", "init", advertise(first),
                                       timeout=120))
        manager.done += m.get("created", [])
        node_ids = {id(manager): manager.transport.run(Step(
            "read the node id", ("docker", "info", "--format", "{{.Swarm.NodeID}}"))
        ).stdout.strip()}
        tokens: dict[str, Secret] = {}
        changes: list[Step] = []
        for item in items[1:]:
            f = item.facts
            assert f is not None
            if f.state != "active":
                node_ids[id(item)] = _join(cfg, manager, item, tokens)
                continue
            node_ids[id(item)] = f.node_id
            want = item.host.role or "worker"
            if (want == "manager") != f.manager:
                verb = "promote" if want == "manager" else "demote"
                changes.append(Step(f"{verb} {item.label}", ("docker", "node", verb, f.node_id),
                                    timeout=60))
                item.done.append(f"{verb}d to {want}")
        for change in changes:
            manager.transport.run(change)
        labels: list[str] = []
        for item in items:
            values = {node_label(cfg, "app"): "true", **item.host.labels}
            if item is manager:
                values[node_label(cfg, "edge")] = "true"
            for key, value in values.items():
                labels += [node_ids[id(item)], f"{key}={value}"]
        m = _run(manager, scripts.step(
            "network, node labels, directories", "manager", deploy_scripts.body("setup"),
            cfg.deploy.app_dir, cfg.deploy.network, *labels, timeout=120))
        manager.done += m.get("created", []) + m.get("fixed", [])
    finally:
        for item in items:
            item.transport.close()
    for item in items:
        if item.done:
            ui.ok(f"{item.label}: " + "; ".join(item.done))
        else:
            ui.ok(f"{item.label}: already set up (nothing to do)")
    return items
