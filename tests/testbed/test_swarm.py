"""The Swarm test bed and the stand-in for Traefik's Swarm provider.

Unit tests of the stand-in's rules (which tasks, which address), then the real thing: the
test bed's engines, each in its own namespaces, form a swarm, an overlay spans them, and the
stand-in routes to running tasks only, over the overlay, from a container on it. (That it
fails requests when tasks stop without the drain, and none with it, is shown through
`inv deploy` in `tests/e2e/test_swarm.py`.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.load import LoadGenerator
from tests.support.swarm import SwarmBed, SwarmNode
from tests.support.swarm_front import SwarmFront, swarm_containers

ENTRYPOINT = (Path(__file__).resolve().parents[2] / "fabfile" / "swarm" / "scripts"
              / "entrypoint.sh").read_text()
DOMAIN = "roster.test"
LABELS = {"traefik.enable": "true", "traefik.http.routers.web.rule": f"Host(`{DOMAIN}`)",
          "traefik.http.services.web.loadbalancer.server.port": "8000"}
REFRESH, THROTTLE = 2.0, 1.0


def task(tid: str, service: str, state: str, desired: str = "running",
         addresses: tuple[str, ...] = ("10.0.1.5/24",), net: str = "n1", slot: int = 1) -> dict[
        str, Any]:
    return {"ID": tid, "ServiceID": service, "Slot": slot, "DesiredState": desired,
            "Status": {"State": state},
            "NetworksAttachments": [{"Network": {"ID": net}, "Addresses": list(addresses)}]}


def service(sid: str, name: str, labels: dict[str, str], vips: tuple[str, ...] = ()) -> dict[
        str, Any]:
    return {"ID": sid, "Spec": {"Name": name, "Labels": labels},
            "Endpoint": {"VirtualIPs": [{"NetworkID": "n1", "Addr": v} for v in vips]}}


def test_the_provider_routes_to_running_tasks_whose_desired_state_is_running() -> None:
    svc = service("s1", "app_web", {**LABELS, "com.docker.stack.namespace": "app"})
    tasks = [task("t1", "s1", "running", addresses=("10.0.1.5/24",), slot=1),
             task("t2", "s1", "starting", addresses=("10.0.1.6/24",), slot=2),
             task("t3", "s1", "running", desired="shutdown", addresses=("10.0.1.7/24",), slot=1)]
    found = swarm_containers([svc], tasks, {"n1": "edge"}, project="app")
    assert [(c["Name"], c["NetworkSettings"]["Networks"]["edge"]["IPAddress"]) for c in found] \
        == [("app_web.1.t1", "10.0.1.5")]
    assert swarm_containers([svc], tasks, {"n1": "edge"}, project="other") == []


def test_lbswarm_routes_to_the_service_vip_and_the_network_label_picks_the_address() -> None:
    labels = {**LABELS, "traefik.docker.lbswarm": "true", "traefik.docker.network": "edge"}
    found = swarm_containers([service("s1", "web", labels, vips=("10.0.1.2/24",))],
                             [task("t1", "s1", "running")], {"n1": "edge"})
    assert len(found) == 1 and found[0]["Name"] == "web"
    assert found[0]["NetworkSettings"]["Networks"] == {"edge": {"IPAddress": "10.0.1.2"}}


# --- on the real swarm -------------------------------------------------------------------

def stack(image: str, drain: float, replicas: int = 2) -> dict[str, Any]:
    """A stack of one web service like the one `inv deploy` renders: dnsrr, start-first,
    the entrypoint wrapper draining for `drain` seconds after SIGTERM."""
    return {"version": "3.9", "services": {"web": {
        "image": image,
        "entrypoint": ["/bin/sh", "-c", ENTRYPOINT.replace("$", "$$"), "entrypoint",
                       f"{drain:g}"],
        "command": ["/app/serve"],
        "healthcheck": {"test": ["CMD-SHELL", "test ! -e /tmp/drain && wget -q -O /dev/null "
                                              "http://127.0.0.1:8000/health || exit 1"],
                        "interval": "1s", "timeout": "1s", "retries": 2, "start_period": "3s"},
        "stop_grace_period": f"{drain + 5:g}s",
        "networks": ["edge"],
        "deploy": {"endpoint_mode": "dnsrr", "replicas": replicas, "labels": LABELS,
                   "update_config": {"order": "start-first", "parallelism": 1,
                                     "failure_action": "rollback", "monitor": "5s"}}}},
        "networks": {"edge": {"external": True, "name": "tb-edge"}}}


def stack_deploy(node: SwarmNode, tmp: Path, name: str, data: dict[str, Any],
                 version: str) -> float:
    """`docker stack deploy` and wait until every web task runs `version`; seconds taken."""
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(data))
    started = time.monotonic()
    node.docker("stack", "deploy", "--resolve-image", "never", "-c", str(path), name)
    while time.monotonic() - started < 90:
        state = node.docker("service", "inspect", "-f",
                            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", f"{name}_web")
        tasks = node.docker("service", "ps", "-f", "desired-state=running", "--format",
                            "{{.Image}} {{.CurrentState}}", f"{name}_web").splitlines()
        if state in ("", "completed") and len(tasks) == data["services"]["web"]["deploy"][
                "replicas"] and all(t.startswith(f"{version} Running") for t in tasks):
            return time.monotonic() - started
        time.sleep(0.3)
    raise TimeoutError(f"{name}_web did not converge on {version}: {state} {tasks}")


@pytest.fixture
def swarm(swarm_bed: SwarmBed, tmp_path: Path) -> Iterator[tuple[SwarmNode, str]]:
    """The bed's first two nodes in one swarm with the attachable overlay `tb-edge`; a stack
    name for the test, removed after it."""
    manager, worker = swarm_bed.nodes[:2]
    swarm_bed.form(manager, [worker])
    if not manager.docker("network", "ls", "-q", "-f", "name=^tb-edge$"):
        manager.docker("network", "create", "-d", "overlay", "--attachable", "tb-edge")
    name = f"tb{int(time.time() * 1000) % 100000}"
    yield manager, name
    manager.docker("stack", "rm", name, check=False)


pytestmark = pytest.mark.testbed


def test_the_front_sees_tasks_on_both_nodes_only_once_running(
        swarm: tuple[SwarmNode, str], tmp_path: Path,
        make_swarm_front: Callable[..., SwarmFront]) -> None:
    manager, name = swarm
    stack_deploy(manager, tmp_path, name, stack("shipyard-test/app:v1", 0), "shipyard-test/app:v1")
    front = make_swarm_front(network="tb-edge", project=name, refresh=REFRESH, throttle=THROTTLE)
    assert len(front.table.servers_for(DOMAIN)) == 2
    nodes = manager.docker("service", "ps", "-f", "desired-state=running", "--format",
                           "{{.Node}}", f"{name}_web").split()
    assert len(set(nodes)) == 2, f"expected one task per node, got {nodes}"
    with LoadGenerator(f"{front.url}/", host=DOMAIN, rate=20, max_seconds=2) as load:
        load.wait(10)
    served_by = {r.body.rsplit(" on ", 1)[-1] for r in load.results() if r.ok}
    assert not load.failures() and len(served_by) == 2, load.summary()

    manager.docker("service", "update", "--detach", "--no-resolve-image", "--image",
                   "shipyard-test/app:slow", f"{name}_web")
    deadline = time.monotonic() + 30
    while "Starting" not in manager.docker("service", "ps", "--format", "{{.CurrentState}}",
                                           f"{name}_web"):
        assert time.monotonic() < deadline, "the slow task never showed as starting"
        time.sleep(0.2)
    polls, deadline = front.polls, time.monotonic() + REFRESH + 2
    while front.polls == polls:
        assert time.monotonic() < deadline, "the front stopped polling"
        time.sleep(0.1)
    time.sleep(THROTTLE + 0.2)
    assert "Starting" in manager.docker("service", "ps", "--format", "{{.CurrentState}}",
                                        f"{name}_web")
    assert len(front.table.servers_for(DOMAIN)) == 2, front.summary()
