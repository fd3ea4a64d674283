"""Swarm deploy and rollback plans as data, and the swarm facts they are made from."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import pytest

from fabfile.config import Config, load_config
from fabfile.deploy.facts import Facts, FileFact, Release
from fabfile.deploy.plan import Options
from fabfile.render import render_release
from fabfile.swarm import facts as swarm_facts
from fabfile.swarm.facts import Node, Service, SwarmFacts, Task
from fabfile.swarm.plan import (
    as_data,
    converge_timeout,
    crowding,
    plan_deploy,
    plan_rollback,
    secrets,
)
from tests.swarm.test_topology import SECRETS, swarm_env

RID = "20240501T100000Z-latest"
OLD = "20240401T100000Z-v0"


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config("swarm", root=swarm_env(tmp_path_factory.mktemp("env")),
                       environ=SECRETS)


def deployed(cfg: Config, current: str = OLD) -> Facts:
    """A manager whose current release is exactly what `cfg` renders."""
    files = {f.path: FileFact(hashlib.sha256(f.content.encode()).hexdigest(), f.mode)
             for f in render_release(cfg)}
    return Facts(docker="20.10.24", app_dir=True, lock="taken", network=True,
                 releases=(Release(current, True),), current=current, files=files,
                 contents={f.path: f.content for f in render_release(cfg)})


def running(cfg: Config, image: str = "ghcr.io/acme/roster-api:latest@sha256:abc",
            state: str = "completed", tasks: int = 3) -> SwarmFacts:
    return SwarmFacts(
        state="active", manager=True, services=(Service("s1", "roster_web", image, 3, state),
                                                Service("s2", "roster_traefik", "traefik", 1,
                                                        "none")),
        tasks=tuple(Task(f"t{i}", "s1", str(i), "n1", "running", "running", image)
                    for i in range(1, tasks + 1)),
        secrets=frozenset(secrets(cfg)))


def kinds(plan: object) -> list[str]:
    return [a.kind for a in plan.actions]  # type: ignore[attr-defined]


def test_first_deploy_uploads_creates_secrets_migrates_then_deploys(cfg: Config) -> None:
    plan = plan_deploy(cfg, Facts(docker="20.10.24", app_dir=True, lock="taken", network=True),
                       SwarmFacts(state="active", manager=True), render_release(cfg), "m",
                       Options(release_id=RID, token=""))
    assert kinds(plan) == ["upload", "secrets", "migrate", "stack"]
    assert plan.reasons == ("no web service yet: first deploy",)
    step = plan.actions[1].step
    assert step.stdin is not None and SECRETS["STRIPE_KEY"].encode() not in step.stdin
    assert base64.b64encode(SECRETS["STRIPE_KEY"].encode()) in step.stdin
    assert SECRETS["STRIPE_KEY"] not in " ".join(step.argv)
    data = as_data(plan)
    assert data["steps"][3]["argv"][:8] == ["sh", "-c", "<phase.sh>", "sh", "/srv/roster/lock",
                                            "", "5", "stack"]
    assert data["steps"][3]["argv"][8] == "<stack.sh>"
    assert data["steps"][3]["argv"][9:] == [
        f"/srv/roster/releases/{RID}/stack.yml", "roster", "web", "3",
        str(converge_timeout(cfg)), "always", "/srv/roster", "8", "roster.app", ""]


def test_nothing_changed_is_no_step(cfg: Config) -> None:
    plan = plan_deploy(cfg, deployed(cfg), running(cfg), render_release(cfg), "m",
                       Options(release_id=RID, token=""))
    assert plan.noop and plan.release == OLD and len(plan.old_ids) == 3


def test_a_new_version_migrates_and_rolls_and_can_go_back(cfg: Config) -> None:
    facts = deployed(dataclasses.replace(cfg, app=dataclasses.replace(cfg.app, tag="v0")))
    old = running(cfg, image="ghcr.io/acme/roster-api:v0")
    plan = plan_deploy(cfg, facts, old, render_release(cfg), "m", Options(release_id=RID, token=""))
    assert kinds(plan) == ["upload", "migrate", "stack"]
    assert plan.reasons[0] == "image ghcr.io/acme/roster-api:v0 -> ghcr.io/acme/roster-api:latest"
    assert plan.actions[2].step.argv[-1] == f"/srv/roster/releases/{OLD}/stack.yml"
    skipped = plan_deploy(cfg, facts, old, render_release(cfg), "m",
                          Options(release_id=RID, token="", skip_migrations=True))
    assert kinds(skipped) == ["upload", "stack"]


def test_a_paused_update_or_missing_tasks_redeploy_the_same_release(cfg: Config) -> None:
    for swarm, why in ((running(cfg, state="paused"), "the web service's last update is "
                        "paused"), (running(cfg, tasks=2), "2 of 3 web tasks running")):
        plan = plan_deploy(cfg, deployed(cfg), swarm, render_release(cfg), "m",
                           Options(release_id=RID, token=""))
        assert kinds(plan) == ["stack"] and plan.reasons == (why,) and plan.release == OLD


def test_web_tasks_crowding_one_node_redeploy_the_same_release_to_spread_them(
        cfg: Config) -> None:
    label = {"roster.app": "true"}
    nodes = (Node("n1", "manager", "ready", "active", "10.0.0.1", "reachable", "a", label),
             Node("n2", "worker", "ready", "active", "10.0.0.2", "-", "b", label),
             Node("n3", "worker", "ready", "active", "10.0.0.3", "-", "c", {}))
    crowded = dataclasses.replace(running(cfg), nodes=nodes)
    plan = plan_deploy(cfg, deployed(cfg), crowded, render_release(cfg), "m",
                       Options(release_id=RID, token=""))
    assert kinds(plan) == ["stack"] and plan.release == OLD
    assert plan.reasons == ("3 web tasks on a, none on b",)
    moved = dataclasses.replace(crowded.tasks[2], node_id="n2")
    one_off = dataclasses.replace(crowded, tasks=(*crowded.tasks[:2], moved))
    assert crowding(cfg, one_off) is None
    drained = dataclasses.replace(crowded, nodes=(nodes[0], dataclasses.replace(
        nodes[1], availability="drain"), nodes[2]))
    assert crowding(cfg, drained) is None


def test_rollback_deploys_the_target_release_again(cfg: Config) -> None:
    facts = deployed(cfg, current=RID)
    facts = Facts(**{**facts.__dict__, "releases": (Release(OLD, True), Release(RID, True))})
    plan = plan_rollback(cfg, facts, running(cfg), OLD, "m", "")
    assert kinds(plan) == ["stack"] and plan.switch and plan.version == "v0"
    assert plan.actions[0].step.argv[-1] == f"/srv/roster/releases/{RID}/stack.yml"


MSG = base64.b64encode(b"update rolled back due to failure").decode()
ERR = base64.b64encode(b"no suitable node (1 node not available)").decode()
REPORT = f"""@facts 1
@end
@swarm 1
swarm active true nodeid1 cluster1
node nodeid1 manager ready active 10.0.0.1 reachable vps1 {{"roster.app":"true","a":"b"}}
node nodeid2 worker down active 10.0.0.2 - vps2 null
service s1 roster_web ghcr.io/acme/roster-api:v1@sha256:abc 3 rollback_completed
update_message s1 {MSG}
task t1 s1 1 nodeid1 running running ghcr.io/acme/roster-api:v1@sha256:abc
task t2 s1 2 - running pending ghcr.io/acme/roster-api:v1@sha256:abc {ERR}
secret roster_database_url_0123456789ab
config roster_entrypoint_0123456789ab
@swarm-end
"""


def test_the_swarm_report_parses() -> None:
    found = swarm_facts.parse(REPORT)
    assert (found.state, found.manager, found.node_id) == ("active", True, "nodeid1")
    assert [n.ready for n in found.nodes] == [True, False]
    assert found.nodes[0].labels == {"roster.app": "true", "a": "b"}
    web = found.service("roster_web")
    assert web is not None and web.update_message == "update rolled back due to failure"
    assert [t.node_id for t in found.tasks_of("roster_web")] == ["nodeid1", "-"]
    assert found.tasks[1].error == "no suitable node (1 node not available)"
    assert found.hostname("nodeid1") == "vps1" and found.secrets == {
        "roster_database_url_0123456789ab"}


def test_a_cut_report_is_an_error() -> None:
    from fabfile.errors import UserError

    with pytest.raises(UserError, match="complete swarm report"):
        swarm_facts.parse("@swarm 1\nswarm active true")


def test_the_node_report_parses() -> None:
    found = swarm_facts.parse_node(
        "@node 1\ndocker 20.10.24\nswarm active false nodeid2 - 10.0.0.2\n"
        "managers 10.0.0.1:2377 \nlisten 80 nginx,\n@end\n")
    assert (found.state, found.manager, found.cluster_id, found.addr) == (
        "active", False, "", "10.0.0.2")
    assert found.managers == ("10.0.0.1",) and found.listeners == {80: "nginx"}


def test_scripts_are_found(tmp_path: Path) -> None:
    from fabfile.swarm import scripts

    assert all(scripts.body(name).startswith("#") for name in scripts.NAMES)
