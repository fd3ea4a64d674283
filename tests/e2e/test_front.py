"""The Traefik stand-in (`tests/support/front.py`) against the real Docker Engine.

The pure tests pin how the routing table is built from `docker inspect` data; the `e2e`
tests run the fake app in containers on a network of their own and check the properties the
zero-downtime test relies on: only healthy containers get traffic, a drained container leaves
the pool and can then be stopped without a failed request, and stopping a container that is
still in the pool does fail requests.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.docker import TEST_LABEL, docker, remove_labelled, unique_name, wait_for_health
from tests.support.front import (
    Front,
    RuleError,
    ThrottleMode,
    build_table,
    parse_host_rule,
    request_host,
)
from tests.support.images import APP_HEALTHCHECK, APP_PORT, ImageSet
from tests.support.load import LoadGenerator

HOST = "roster.test"
THROTTLE = 2.0


def inspect(
    name: str,
    labels: dict[str, str],
    *,
    health: str | None = None,
    running: bool = True,
    networks: dict[str, str] | None = None,
    ports: tuple[str, ...] = ("8000/tcp",),
) -> dict[str, Any]:
    """The parts of a `docker inspect` object the front reads."""
    state: dict[str, Any] = {"Running": running}
    if health is not None:
        state["Health"] = {"Status": health}
    return {
        "Id": f"id-{name}",
        "Name": f"/{name}",
        "State": state,
        "Config": {"Labels": labels},
        "NetworkSettings": {
            "Networks": {
                net: {"IPAddress": ip} for net, ip in (networks or {"web": "10.0.0.2"}).items()
            },
            "Ports": {port: None for port in ports},
        },
    }


WEB = {
    "traefik.enable": "true",
    "traefik.http.routers.web.rule": f"Host(`{HOST}`) || Host(`www.{HOST}`)",
    "traefik.http.routers.web.service": "web",
    "traefik.http.services.web.loadbalancer.server.port": "8000",
}


def test_host_rules() -> None:
    assert parse_host_rule("Host(`a.example`)") == {"a.example"}
    assert parse_host_rule("Host(`A.example`) || (Host(`b.example`))") == {"a.example", "b.example"}
    with pytest.raises(RuleError):
        parse_host_rule("Host(`a.example`) && PathPrefix(`/api`)")
    assert request_host("Roster.Test:8080") == "roster.test"
    assert request_host("[::1]:80") == "::1"


def test_only_running_enabled_healthy_containers_are_routed() -> None:
    table = build_table([
        inspect("healthy", WEB, health="healthy", networks={"web": "10.0.0.2"}),
        inspect("nocheck", WEB, networks={"web": "10.0.0.3"}),
        inspect("starting", WEB, health="starting", networks={"web": "10.0.0.4"}),
        inspect("unhealthy", WEB, health="unhealthy", networks={"web": "10.0.0.5"}),
        inspect("exited", WEB, running=False, networks={"web": "10.0.0.6"}),
        inspect("disabled", {**WEB, "traefik.enable": "false"}, networks={"web": "10.0.0.7"}),
    ])
    assert [s.address for s in table.servers_for(HOST)] == ["10.0.0.2:8000", "10.0.0.3:8000"]
    assert table.servers_for(f"www.{HOST}") == table.servers_for(HOST)
    assert table.servers_for("other.test") == ()
    assert table.errors == ()


def test_network_label_project_filter_and_defaults() -> None:
    labels = {**WEB, "traefik.docker.network": "web", "com.docker.compose.project": "roster"}
    two_nets = {"db": "10.1.0.9", "web": "10.0.0.9"}
    table = build_table(
        [inspect("a", labels, networks=two_nets),
         inspect("b", {**labels, "com.docker.compose.project": "other"})],
        project="roster",
    )
    assert [s.address for s in table.servers_for(HOST)] == ["10.0.0.9:8000"]

    bare = {"traefik.enable": "true", "com.docker.compose.project": "roster",
            "com.docker.compose.service": "api"}
    table = build_table([inspect("roster-api-1", bare, ports=("9000/tcp", "8080/tcp"))])
    assert [(r.name, r.rule, r.service) for r in table.routers] == [
        ("api-roster", "Host(`api-roster`)", "api-roster")
    ]
    assert [s.port for s in table.servers_for("api-roster")] == [8080]


def test_replicas_merge_and_conflicting_routers_are_dropped() -> None:
    table = build_table([
        inspect("old", WEB, health="healthy", networks={"web": "10.0.0.2"}),
        inspect("new", WEB, health="healthy", networks={"web": "10.0.0.3"}),
        inspect("odd", {**WEB, "traefik.http.routers.web.rule": "Host(`elsewhere.test`)"},
                networks={"web": "10.0.0.4"}),
    ])
    assert table.routers == ()
    assert any("web" in error for error in table.errors)
    assert len(table.services["web"]) == 3


def test_load_generator_stays_on_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        LoadGenerator("http://10.0.0.2:8000", host=HOST)


@dataclass
class Lab:
    """Containers of the fake app on a network of their own, labelled as Compose would."""

    images: ImageSet
    project: str

    @property
    def network(self) -> str:
        return self.project

    def run(self, name: str, image: str, retries: int = 2) -> str:
        """Start the app as `<project>-<name>` with Traefik labels and the deploy's healthcheck."""
        container = f"{self.project}-{name}"
        labels = {
            TEST_LABEL: self.project,
            "com.docker.compose.project": self.project,
            **WEB,
            "traefik.http.services.web.loadbalancer.server.port": str(APP_PORT),
            "traefik.docker.network": self.network,
        }
        docker(
            "run", "-d", "--name", container, "--network", self.network,
            *(arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")),
            "--health-cmd", f"{APP_HEALTHCHECK} || exit 1", "--health-interval", "1s",
            "--health-retries", str(retries), "--health-start-period", "10s", image,
        )
        return container

    def run_healthy(self, front: Front, *images: str, retries: int = 2) -> list[str]:
        """Start one container per image and wait until the front routes to all of them."""
        names = [self.run(chr(ord("a") + i), image, retries) for i, image in enumerate(images)]
        for name in names:
            wait_for_health(name, "healthy", timeout=20)
        front.wait_for_backends(HOST, names, timeout=THROTTLE + 5)
        return names

    def ip(self, container: str) -> str:
        networks = json.loads(
            docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
        )
        return str(networks[self.network]["IPAddress"])


@pytest.fixture
def lab(test_images: ImageSet) -> Iterator[Lab]:
    project = unique_name("front")
    docker("network", "create", "--label", f"{TEST_LABEL}={project}", project)
    try:
        yield Lab(test_images, project)
    finally:
        remove_labelled(project)


def event_time(front: Front, action: str, container: str) -> float:
    return next(e.at for e in front.events if e.action == action and e.container == container)


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_routes_only_to_healthy_containers(lab: Lab, make_front: Callable[..., Front]) -> None:
    front = make_front(project=lab.project, throttle=THROTTLE)
    (ready,) = lab.run_healthy(front, lab.images.app_v1)
    with LoadGenerator(front.url, host=HOST, rate=25, max_seconds=30) as load:
        slow = lab.run("slow", lab.images.app_slow)
        wait_for_health(slow, "healthy", timeout=20)
        healthy_at = load.now()
        front.wait_for_backends(HOST, [ready, slow], timeout=THROTTLE + 3)
        time.sleep(1.0)
    print(load.summary(), front.summary(), sep="\n")
    assert load.failures() == [], load.summary()
    assert load.versions_seen(until=healthy_at) == {"v1"}, front.summary()
    assert "slow" in load.versions_seen(since=healthy_at)
    joined = front.refreshes[-1]
    assert slow in joined.backends
    delay = joined.at - event_time(front, "health_status: healthy", slow)
    assert THROTTLE <= delay < THROTTLE + 1.0, front.summary()


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_drained_container_leaves_the_pool_and_stops_without_failures(
    lab: Lab, make_front: Callable[..., Front]
) -> None:
    front = make_front(project=lab.project, throttle=THROTTLE)
    old, new = lab.run_healthy(front, lab.images.app_v1, lab.images.app_v2)
    with LoadGenerator(front.url, host=HOST, rate=25, max_seconds=30) as load:
        time.sleep(1.0)
        drained_at = load.now()
        docker("exec", old, "touch", "/tmp/drain")
        wait_for_health(old, "unhealthy", timeout=10)
        front.wait_for_backends(HOST, [new], timeout=THROTTLE + 3)
        left_at = load.now()
        docker("stop", "-t", "10", old)
        time.sleep(1.0)
    print(load.summary(), front.summary(), sep="\n")
    assert load.failures() == [], f"{load.summary()}\n{front.summary()}"
    assert load.versions_seen(until=drained_at) == {"v1", "v2"}
    assert load.versions_seen(since=left_at) == {"v2"}
    left = next(r for r in front.refreshes if f"health_status: unhealthy {old}" in r.reason)
    assert left.backends == (new,), front.summary()
    assert left.at - event_time(front, "health_status: unhealthy", old) >= THROTTLE


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_stopping_a_pooled_container_fails_requests(
    lab: Lab, make_front: Callable[..., Front]
) -> None:
    """Without the drain, requests keep going to the stopped container until `die` + throttle."""
    front = make_front(project=lab.project, throttle=THROTTLE)
    gone, kept = lab.run_healthy(front, lab.images.app_v1, lab.images.app_v2)
    with LoadGenerator(front.url, host=HOST, rate=25, max_seconds=30, timeout=3) as load:
        time.sleep(1.0)
        stopped_at = load.now()
        docker("stop", "-t", "10", gone)
        front.wait_for_backends(HOST, [kept], timeout=THROTTLE + 3)
        removed_at = load.now()
        time.sleep(1.0)
    print(load.summary(), front.summary(), sep="\n")
    failures = load.failures()
    assert len(failures) >= 10, f"{load.summary()}\n{front.summary()}"
    assert all(stopped_at <= f.started < removed_at for f in failures), load.summary()
    assert load.failures(since=removed_at) == []
    assert "die" in front.refreshes[-1].reason


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_stop_and_kill_events_leave_a_stopping_container_in_the_pool(
    lab: Lab, make_front: Callable[..., Front]
) -> None:
    """Traefik's exact throttle: `kill`/`stop` change nothing; only `health_status`/`die` do.

    The app stops accepting on SIGTERM but lets an in-flight request finish before it exits,
    as a real app with a grace period does. For those seconds the front keeps routing to it
    (502s) until Docker reports a change: the healthcheck failing `retries` times, or the exit.
    """
    front = make_front(project=lab.project, throttle=THROTTLE, mode=ThrottleMode.TRAEFIK)
    gone, kept = lab.run_healthy(front, lab.images.app_v1, lab.images.app_v2, retries=3)
    slow_status: list[int] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection(lab.ip(gone), APP_PORT, timeout=15)
        try:
            conn.request("GET", "/slow?seconds=3")
            slow_status.append(conn.getresponse().status)
        finally:
            conn.close()

    in_flight = threading.Thread(target=slow_request)
    with LoadGenerator(front.url, host=HOST, rate=25, max_seconds=30, timeout=3) as load:
        time.sleep(1.0)
        in_flight.start()
        time.sleep(0.3)
        docker("stop", "-t", "10", gone)
        front.wait_for_backends(HOST, [kept], timeout=THROTTLE + 3)
        time.sleep(1.0)
    in_flight.join(timeout=15)
    print(load.summary(), front.summary(), sep="\n")

    assert slow_status == [200], "the in-flight request did not finish during the stop"
    ignored = {e.action for e in front.events if e.container == gone and not e.triggers_refresh}
    assert {"kill", "stop"} <= ignored
    killed_at = event_time(front, "kill", gone)
    removal = next(r for r in front.refreshes if r.at > killed_at)
    assert removal.backends == (kept,), front.summary()
    assert removal.reason.startswith(("health_status: unhealthy", "die")), front.summary()
    assert removal.at - killed_at >= 1.5, front.summary()
    refused = [f for f in load.failures() if f.status == 502]
    assert len(refused) >= 10, f"{load.summary()}\n{front.summary()}"
