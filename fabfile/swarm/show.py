"""How a swarm environment looks on the terminal (`inv status`), secrets redacted by `ui`."""

from __future__ import annotations

from fabfile import ui
from fabfile.config import Config
from fabfile.deploy.facts import Facts
from fabfile.deploy.show import show_lock, show_releases

from .facts import SwarmFacts
from .plan import image_of


def show_status(cfg: Config, host: str, facts: Facts, swarm: SwarmFacts) -> None:
    """Nodes, the stack's services and tasks, the releases, the lock and the last deploy."""
    console = ui.console
    role = "manager" if swarm.manager else "not a manager"
    console.print(f"[bold]{host}[/]: Docker {facts.docker or 'missing'}, swarm {swarm.state} "
                  f"({role}), {cfg.deploy.app_dir} "
                  f"{'present' if facts.app_dir else 'MISSING (run inv setup)'}")
    prefix = f"{cfg.project}."
    nodes = [[n.hostname, n.role + (f" ({n.reachability})" if n.reachability != "-" else ""),
              n.state, n.availability, n.addr,
              ", ".join(f"{k}={v}" for k, v in sorted(n.labels.items()) if k.startswith(prefix))]
             for n in sorted(swarm.nodes, key=lambda n: (n.role != "manager", n.hostname))]
    console.print(ui.table("nodes", ["node", "role", "state", "availability", "address",
                                     "labels"], nodes or [["none", "", "", "", "", ""]]))
    services = []
    for s in sorted(swarm.services, key=lambda s: s.name):
        running = sum(t.state == "running" for t in swarm.tasks_of(s.name))
        wanted = "job" if s.replicas is None else str(s.replicas)
        update = s.update_state + (f": {s.update_message}" if s.update_message else "")
        services.append([s.name, image_of(s.image), f"{running}/{wanted}", update])
    console.print(ui.table("services", ["service", "image", "running", "last update"],
                           services or [["none", "", "", ""]]))
    tasks = []
    for s in sorted(swarm.services, key=lambda s: s.name):
        for t in swarm.tasks_of(s.name):
            tasks.append([f"{s.name}.{t.slot}", swarm.hostname(t.node_id), t.state,
                          image_of(t.image), t.error])
    console.print(ui.table("tasks (desired: running)", ["task", "node", "state", "image",
                                                        "error"],
                           tasks or [["none", "", "", "", ""]]))
    show_releases(cfg, facts)
    show_lock(cfg, facts)
