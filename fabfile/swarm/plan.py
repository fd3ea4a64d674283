"""What a deploy or a rollback does to a swarm, as data: pure functions of the config, the
control manager's facts and the rendered release, like `fabfile.deploy.plan`.

A deploy uploads the release (when its files changed) to the control manager, creates the
Docker secrets it names that do not exist yet, runs the migration job when the web service
changes, then deploys the stack and waits until it converged (`scripts/stack.sh`, which puts
the previous release back when the update fails). Nothing changed and every task running:
no step at all (two commands: facts and finish).
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fabfile.config import Config
from fabfile.deploy import rollout
from fabfile.deploy.facts import Facts
from fabfile.deploy.plan import Action, HostPlan, Options, file_changes, normalize_image
from fabfile.deploy.plan import as_data as host_plan_data
from fabfile.deploy.release import upload_step, version_of
from fabfile.errors import UserError
from fabfile.remote import Step
from fabfile.render import RenderedFile

from . import scripts
from .facts import SwarmFacts
from .render import app_variables, drain_seconds, secret_name
from .topology import node_label

MIGRATE_TIMEOUT = 3600
"""Seconds a migration job may take before the deploy gives up waiting (it keeps running)."""


def release_file(cfg: Config, release: str, name: str) -> str:
    return f"{cfg.deploy.app_dir}/releases/{release}/{name}"


def web_service(cfg: Config) -> str:
    return f"{cfg.project}_{cfg.app.name}"


def converge_timeout(cfg: Config) -> int:
    """How long the web service's update may take: each batch of `update_parallelism` tasks
    starts and turns healthy in turn, then Swarm watches the last for `monitor` seconds."""
    sw = cfg.deploy.swarm
    batches = math.ceil(cfg.app.replicas / sw.update_parallelism)
    per_batch = rollout.up_timeout(cfg) + sw.update_delay
    return int(batches * per_batch + sw.monitor + 10)


def image_of(spec_image: str) -> str:
    """A service's image as configured: the digest `--resolve-image` pinned is left out."""
    return normalize_image(spec_image.split("@", 1)[0])


def secrets(cfg: Config) -> dict[str, str]:
    """Docker secret name -> value of this release's secrets."""
    return {secret_name(cfg, k, v): v for k, v in app_variables(cfg).secret.items()}


def secrets_step(cfg: Config, missing: Sequence[str]) -> Step:
    values = secrets(cfg)
    lines = "".join(f"{name} {base64.b64encode(values[name].encode()).decode()}\n"
                    for name in missing)
    return scripts.step(f"create {len(missing)} Docker secret{'s' * (len(missing) != 1)}",
                        "secrets", cfg.project, stdin=lines.encode(), timeout=120)


def stack_step(cfg: Config, release: str, previous: str | None, *, title: str,
               token: str) -> Step:
    """Deploy `release`'s stack and wait until it converged, then until Traefik's next poll
    (the provider's refresh, its throttle and the margin); put `previous` back on failure."""
    timeout = converge_timeout(cfg)
    back = release_file(cfg, previous, "stack.yml") if previous else ""
    return scripts.phase(title, rollout.phase_lock(cfg, token), "stack",
                         release_file(cfg, release, "stack.yml"), cfg.project, cfg.app.name,
                         str(cfg.app.replicas), str(timeout), cfg.deploy.swarm.resolve_image,
                         cfg.deploy.app_dir, f"{drain_seconds(cfg):g}",
                         node_label(cfg, "app"), back,
                         timeout=2 * timeout + 120)


def crowding(cfg: Config, swarm: SwarmFacts) -> str | None:
    """Why the web tasks crowd one node ("2 web tasks on a, none on b"): a node that may run
    them (ready, active, labelled for the app) runs two or more fewer than another; None if
    they are spread. `scripts/stack.sh` spreads them after the stack converged."""
    web = swarm.service(web_service(cfg))
    label = node_label(cfg, "app")
    nodes = [n for n in swarm.nodes if n.ready and n.labels.get(label) == "true"]
    if web is None or len(nodes) < 2:
        return None
    counts = Counter(t.node_id for t in swarm.tasks_of(web.name) if t.state == "running")
    low, high = min(nodes, key=lambda n: counts[n.id]), max(nodes, key=lambda n: counts[n.id])
    if counts[high.id] - counts[low.id] < 2:
        return None
    return (f"{counts[high.id]} web tasks on {high.hostname}, "
            f"{counts[low.id] or 'none'} on {low.hostname}")


def _web_reasons(cfg: Config, swarm: SwarmFacts) -> list[str]:
    """Why the stack must be deployed although its files did not change."""
    web = swarm.service(web_service(cfg))
    if web is None:
        return ["no web service yet: first deploy"]
    reasons = []
    if image_of(web.image) != cfg.image_ref:
        reasons.append(f"image {image_of(web.image)} -> {cfg.image_ref}")
    if web.update_state in ("paused", "rollback_paused"):
        reasons.append(f"the web service's last update is {web.update_state}")
    running = [t for t in swarm.tasks_of(web.name) if t.state == "running"]
    if len(running) != cfg.app.replicas:
        reasons.append(f"{len(running)} of {cfg.app.replicas} web tasks running")
    elif crowded := crowding(cfg, swarm):
        reasons.append(crowded)
    if cfg.traefik.enabled and swarm.service(f"{cfg.project}_traefik") is None:
        reasons.append("no traefik service yet")
    return reasons


def plan_deploy(cfg: Config, facts: Facts, swarm: SwarmFacts, files: Sequence[RenderedFile],
                host: str, opts: Options) -> HostPlan:
    """The steps that bring the swarm from `facts` to the rendered release."""
    app_dir = cfg.deploy.app_dir
    changes = file_changes(files, facts)
    same_files = facts.current is not None and all(c.status == "unchanged" for c in changes)
    release = facts.current if same_files and facts.current else opts.release_id
    upload = not same_files
    reasons = _web_reasons(cfg, swarm)
    web = swarm.service(web_service(cfg))
    image_changes = web is None or image_of(web.image) != cfg.image_ref
    if upload and not reasons:
        reasons.append("stack files changed")
    roll = bool(reasons)
    migrate = (roll and image_changes and bool(cfg.app.migrate_command)
               and not opts.skip_migrations)
    missing = sorted(set(secrets(cfg)) - swarm.secrets) if roll else []

    actions: list[Action] = []
    if upload:
        actions.append(Action("upload", upload_step(app_dir, release, files)))
    if missing:
        actions.append(Action("secrets", secrets_step(cfg, missing)))
    if migrate:
        actions.append(Action("migrate", scripts.phase(
            f"migrate: {' '.join(cfg.app.migrate_command)} (a swarm job)",
            rollout.phase_lock(cfg, opts.token),
            "migrate", release_file(cfg, release, "migrate.yml"), cfg.project,
            cfg.deploy.swarm.resolve_image, str(MIGRATE_TIMEOUT), timeout=MIGRATE_TIMEOUT + 120)))
    if roll:
        n = cfg.app.replicas
        actions.append(Action("stack", stack_step(
            cfg, release, facts.current if facts.current != release else None,
            title=f"stack deploy, wait until {n} web task{'s' * (n != 1)} run {cfg.app.tag}",
            token=opts.token)))
    tasks = swarm.tasks_of(web.name) if web else ()
    return HostPlan(
        host=host, app_dir=app_dir, action="deploy", version=cfg.app.tag, release=release,
        previous=facts.current, upload=upload, switch=release != facts.current,
        image=cfg.image_ref, images_before=(image_of(web.image),) if web else (),
        changes=changes, services=tuple(s.name for s in swarm.services), migrate=migrate,
        roll=roll, old_ids=tuple(t.id for t in tasks), reasons=tuple(reasons),
        actions=tuple(actions))


def plan_rollback(cfg: Config, facts: Facts, swarm: SwarmFacts, target: str,
                  host: str, token: str) -> HostPlan:
    """Deploy release `target` (already on the manager) again, by the same rolling update;
    migrations are not reversed."""
    if target not in facts.release_ids:
        raise UserError(f"release {target} is not on {host}")
    web = swarm.service(web_service(cfg))
    step = stack_step(cfg, target, facts.current if facts.current != target else None,
                      title=f"stack deploy of {target}, wait until the web tasks run it",
                      token=token)
    return HostPlan(
        host=host, app_dir=cfg.deploy.app_dir, action="rollback", version=version_of(target),
        release=target, previous=facts.current, upload=False, switch=target != facts.current,
        image="", images_before=(image_of(web.image),) if web else (), roll=True,
        old_ids=tuple(t.id for t in swarm.tasks_of(web.name)) if web else (),
        reasons=(f"roll back from {facts.current} to {target}",),
        actions=(Action("stack", step),))


def as_data(plan: HostPlan) -> dict[str, Any]:
    """`fabfile.deploy.plan.as_data`, with this engine's scripts shown by name."""
    data = host_plan_data(plan)
    for step in data["steps"]:
        step["argv"] = scripts.shown(step["argv"])
    return data
