"""A stand-in for Traefik's Swarm provider, for tests where Traefik itself cannot run.

`SwarmFront` is `front.Front` (the same proxy, label rules, round-robin, retry middleware and
throttle) with its routing table built the way Traefik v3's Swarm provider builds it
(`pkg/provider/docker/pswarm.go`), from a manager's Docker API:

- **When.** It polls: the table is rebuilt every `refresh` seconds (`refreshSeconds`, 15 s by
  default in Traefik) from a fresh listing of services and tasks; Swarm events are not
  watched (`pswarm.go`: "TODO: This need to be change. Linked to Swarm events
  docker/docker#23827"). A listing that differs from the last one takes effect `throttle`
  seconds later (`providersThrottleDuration`; the slowest case, as `ThrottleMode.TRAILING`),
  with the data of the poll.
- **Which tasks.** For a service without `lbswarm`, its tasks listed with the filter
  `desired-state=running` whose `Status.State` is `running` (`listTasks`). Health is not
  looked at: tasks carry no health (`parseTasks` never sets it), but Swarm itself reports a
  task `running` only once its container is healthy (`daemon/cluster/executor/container/
  controller.go`, `Start`). A task whose desired state turned to `shutdown` (an update or a
  rollback replacing it, a scale-down, its node marked down) leaves the table at the next
  poll, while its container may still be stopping, or already gone.
- **Which address.** The task's address on the network named by `traefik.docker.network`
  (or `traefik.swarm.network`, Traefik >= 3.2) else the provider's `network`, else its first
  network; the port from `traefik.http.services.<s>.loadbalancer.server.port`. With
  `traefik.docker.lbswarm=true` (`traefik.swarm.lbswarm`) the service's virtual IP on that
  network is the one server instead (Swarm's IPVS balances behind it; this VM's kernel has
  no IPVS, so such a table can be built here but not served).
- **Labels.** The service's labels (`Spec.Labels`, a stack file's `deploy.labels`), not the
  containers'. `project` keeps the services of one stack (`com.docker.stack.namespace`), as a
  `constraints` expression would.
- **Health checks** (`traefik.http.services.<s>.loadbalancer.healthcheck.path`, `.interval`,
  `.timeout`; `pkg/healthcheck/healthcheck.go`): every `interval` the servers are probed one
  after the other (GET, `timeout` each, default 5 s); one that fails (no 2xx or 3xx answer)
  gets no request until a probe succeeds again. A new routing table starts with every server
  up and the probes of the old one are dropped (Traefik builds new load balancers, with new
  health checkers, on a configuration change).

The proxy runs in this process and listens on 127.0.0.1, but it dials servers from inside a
container attached to the overlay network (`dial_from`: a network namespace file such as
`/proc/PID/ns/net`), as Traefik, itself a task on that network, does: task addresses are
reachable only from there. Sockets are created by a thread that joined that namespace
(`setns(2)`); a socket stays in the namespace it was created in whichever thread uses it.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import queue
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .front import Front, Router, RoutingTable, Server, build_table, request_host

STACK_LABEL = "com.docker.stack.namespace"
DEFAULT_REFRESH = 15.0
CLONE_NEWNET = 0x40000000


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "t", "yes")


def _network_label(labels: Mapping[str, str]) -> str | None:
    return labels.get("traefik.swarm.network") or labels.get("traefik.docker.network")


def _lbswarm(labels: Mapping[str, str]) -> bool:
    return _true(labels.get("traefik.swarm.lbswarm") or labels.get("traefik.docker.lbswarm"))


def _address(cidr: str) -> str:
    return cidr.split("/", 1)[0]


def swarm_containers(services: Iterable[Mapping[str, Any]], tasks: Iterable[Mapping[str, Any]],
                     networks: Mapping[str, str], *,
                     project: str | None = None) -> list[dict[str, Any]]:
    """What Traefik's Swarm provider routes to, as `docker inspect`-like objects for
    `front.build_table`: one per running task (or one per `lbswarm` service, its VIPs).

    `services` and `tasks` are the Docker API's `/services` and `/tasks` objects (tasks as
    listed with `desired-state=running`), `networks` maps network ids to names. Pure.
    """
    by_service: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(str(task.get("ServiceID", "")), []).append(task)
    out: list[dict[str, Any]] = []
    for service in services:
        spec = service.get("Spec") or {}
        labels: Mapping[str, str] = spec.get("Labels") or {}
        name = str(spec.get("Name", ""))
        if project is not None and labels.get(STACK_LABEL) != project:
            continue
        wanted = _network_label(labels)
        if _lbswarm(labels):
            vips = {networks.get(v.get("NetworkID", ""), ""): _address(v.get("Addr", ""))
                    for v in (service.get("Endpoint") or {}).get("VirtualIPs") or []
                    if v.get("Addr")}
            attached = {k: {"IPAddress": v} for k, v in vips.items() if k}
            if attached:
                out.append(_container(service["ID"], name, labels, attached, wanted))
            continue
        for task in by_service.get(str(service.get("ID", "")), []):
            if task.get("DesiredState") != "running":
                continue
            if (task.get("Status") or {}).get("State") != "running":
                continue
            attached = {}
            for attachment in task.get("NetworksAttachments") or []:
                net = networks.get((attachment.get("Network") or {}).get("ID", ""))
                addresses = attachment.get("Addresses") or []
                if net and addresses:
                    attached[net] = {"IPAddress": _address(addresses[0])}
            if attached:
                # Docker names a task's container `<service>.<slot>.<task id>`: a task and
                # its replacement share the slot
                tid = str(task["ID"])
                slot = task.get("Slot") or tid
                out.append(_container(tid, f"{name}.{slot}.{tid[:12]}", labels, attached,
                                      wanted))
    return out


@dataclass(frozen=True)
class HealthCheck:
    """A service's `loadbalancer.healthcheck` labels."""

    path: str
    interval: float = 30.0
    timeout: float = 5.0


def _seconds(text: str | None, default: float) -> float:
    match = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m)?\s*", text or "")
    if not match:
        return default
    value = float(match.group(1))
    return {"ms": value / 1000, "m": value * 60}.get(match.group(2) or "s", value)


def health_checks(services: Iterable[Mapping[str, Any]]) -> dict[str, HealthCheck]:
    """Traefik service name -> its health check, from the services' labels."""
    found: dict[str, HealthCheck] = {}
    for service in services:
        labels: Mapping[str, str] = (service.get("Spec") or {}).get("Labels") or {}
        for key, value in labels.items():
            match = re.fullmatch(r"traefik\.http\.services\.([^.]+)\.loadbalancer\."
                                 r"healthcheck\.path", key)
            if match:
                prefix = key.removesuffix("path")
                found[match.group(1)] = HealthCheck(
                    value, _seconds(labels.get(prefix + "interval"), 30.0),
                    _seconds(labels.get(prefix + "timeout"), 5.0))
    return found


def _container(cid: str, name: str, labels: Mapping[str, str],
               networks: Mapping[str, Any], wanted: str | None) -> dict[str, Any]:
    merged = dict(labels)
    if wanted:
        merged["traefik.docker.network"] = wanted
    return {"Id": cid, "Name": name, "State": {"Running": True},
            "Config": {"Labels": merged}, "NetworkSettings": {"Networks": dict(networks)}}


class NetnsDialer:
    """Makes TCP sockets inside another network namespace (a thread that joined it)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._requests: queue.Queue[Future[socket.socket] | None] = queue.Queue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, name="netns-dialer", daemon=True)
        self._thread.start()
        self._ready.result(timeout=10)

    def _serve(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(self.netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns({self.netns}): {os.strerror(errno)}")
            finally:
                os.close(fd)
        except OSError as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        while (request := self._requests.get()) is not None:
            try:
                request.set_result(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            except OSError as exc:
                request.set_exception(exc)

    def socket(self) -> socket.socket:
        request: Future[socket.socket] = Future()
        self._requests.put(request)
        return request.result(timeout=10)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5)


class _NetnsConnection(http.client.HTTPConnection):
    def __init__(self, dialer: NetnsDialer, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._dialer = dialer

    def connect(self) -> None:
        sock = self._dialer.socket()
        sock.settimeout(self.timeout)
        try:
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class SwarmFront(Front):
    """The Traefik stand-in for Swarm: polls a manager every `refresh` seconds, routes to
    running tasks, dials them from the network namespace `dial_from`."""

    def __init__(self, *, manager_socket: str, dial_from: str,
                 refresh: float = DEFAULT_REFRESH, **kwargs: Any) -> None:
        super().__init__(docker_socket=manager_socket, **kwargs)
        self.refresh = refresh
        self.dial_from = dial_from
        self.polls = 0
        self.health: dict[str, HealthCheck] = {}
        self.down: set[str] = set()
        self.health_changes: list[tuple[float, str, str]] = []
        """(monotonic time, server address, "down: why" or "up"), for failure messages."""
        self.seen: dict[str, str] = {}
        """Every server a poll listed: its name -> its address."""
        self._dialer: NetnsDialer | None = None
        self._polled: RoutingTable | None = None

    def start(self) -> SwarmFront:
        if self._dialer is None:
            self._dialer = NetnsDialer(self.dial_from)
        super().start()
        self._spawn(self._health_loop, "health")
        return self

    def stop(self) -> None:
        super().stop()
        if self._dialer is not None:
            self._dialer.close()
            self._dialer = None

    def _subscribe(self) -> None:
        """Nothing to subscribe to: the Swarm provider polls."""

    def _build(self) -> RoutingTable:
        api = self.docker
        services = api.get("/services")
        filters = urllib.parse.quote(json.dumps({"desired-state": ["running"]}))
        tasks = api.get(f"/tasks?filters={filters}")
        scope = urllib.parse.quote(json.dumps({"scope": ["swarm"]}))
        networks = {n["Id"]: n["Name"] for n in api.get(f"/networks?filters={scope}")}
        self.health = health_checks(s for s in services if self.project is None or (
            (s.get("Spec") or {}).get("Labels") or {}).get(STACK_LABEL) == self.project)
        table = build_table(swarm_containers(services, tasks, networks, project=self.project),
                            network=self.network, exposed_by_default=self.exposed_by_default)
        self.polls += 1
        for servers in table.services.values():
            for server in servers:
                self.seen.setdefault(server.container_name, server.address)
        return table

    def _watch(self) -> None:
        """Poll every `refresh` s; a changed table takes effect `throttle` s after its poll."""
        next_poll = time.monotonic() + self.refresh
        pending: list[tuple[float, RoutingTable]] = []
        with self._lock:
            self._polled = self._table
        while not self._stopping.is_set():
            now = time.monotonic()
            due = [p for p in pending if p[0] <= now]
            for _, table in due:
                self._apply(table, "poll")
            pending = [p for p in pending if p[0] > now]
            if now >= next_poll:
                next_poll += self.refresh
                table = self._try_build()
                if table is not None and table != self._polled:
                    self._polled = table
                    pending.append((now + self.throttle, table))
                continue
            wake = min([next_poll, *(p[0] for p in pending)])
            if self._stopping.wait(max(0.0, wake - time.monotonic())):
                return

    def _new_connection(self, server: Server) -> http.client.HTTPConnection:
        assert self._dialer is not None
        return _NetnsConnection(self._dialer, server.ip, server.port, self.connect_timeout)

    def _next_server(self, host: str) -> tuple[Router | None, Server | None]:
        """Round-robin over the servers of the matched router's service that are up."""
        table = self._table
        router = table.match(host)
        if router is None:
            return None, None
        servers = [s for s in table.services.get(router.service, ())
                   if s.address not in self.down]
        if not servers:
            return router, None
        with self._lock:
            index = self._rr[router.service]
            self._rr[router.service] = index + 1
        return router, servers[index % len(servers)]

    def _health_loop(self) -> None:
        """Probe each service's servers every `interval`, one after the other."""
        table = self._table
        next_round = time.monotonic()
        while not self._stopping.is_set():
            if self._table is not table:
                table = self._table
                self.down = set()
                next_round = time.monotonic()
            checks = {name: hc for name, hc in self.health.items() if name in table.services}
            if not checks:
                if self._stopping.wait(0.2):
                    return
                continue
            interval = min(hc.interval for hc in checks.values())
            if self._stopping.wait(max(0.0, next_round + interval - time.monotonic())):
                return
            next_round = time.monotonic()
            for name, hc in checks.items():
                for server in table.services.get(name, ()):
                    why = self._probe(server, hc)
                    if self._table is not table:
                        break
                    was_down = server.address in self.down
                    if why is None:
                        self.down.discard(server.address)
                    else:
                        self.down.add(server.address)
                    if was_down != (why is not None):
                        self.health_changes.append(
                            (time.monotonic(), server.address, f"down: {why}" if why else "up"))

    def _probe(self, server: Server, hc: HealthCheck) -> str | None:
        """None when the server answers 2xx or 3xx within the timeout, else why not."""
        assert self._dialer is not None
        conn = _NetnsConnection(self._dialer, server.ip, server.port, hc.timeout)
        started = time.monotonic()
        try:
            conn.request("GET", hc.path, headers={"Connection": "close"})
            status = conn.getresponse().status
            return None if 200 <= status < 400 else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__} after {time.monotonic() - started:.1f}s: {exc}"
        finally:
            conn.close()

    def unreachable(self, host: str) -> list[str]:
        """Probe each server routed for `host` once from the front's vantage point (its
        service's health check path, else /): "address: why" for each that does not answer."""
        table = self._table
        router = table.match(request_host(host))
        if router is None:
            return [f"no router for {host}"]
        hc = self.health.get(router.service) or HealthCheck("/")
        return [f"{server.address}: {why}" for server in table.services.get(router.service, ())
                if (why := self._probe(server, hc))]

    def summary(self, origin: float | None = None) -> str:
        """`Front.summary`, the health checks' verdicts that changed and the connections that
        could not be made, per server; times from the first refresh, and from `origin` (a
        `time.monotonic()` value such as `LoadGenerator.started_at`) too when given."""
        lines = [super().summary(), "servers: " + ", ".join(
            f"{name}={address}" for name, address in list(self.seen.items()))]
        events = list(self.health_changes)
        with self._lock:
            dials = list(self.dial_failures)
        if not events and not dials:
            return "\n".join(lines)
        start = self.refreshes[0].at if self.refreshes else min(t for t, _, _ in events + dials)
        wall = time.strftime("%H:%M:%S", time.gmtime(time.time() - time.monotonic() + start))
        clock = f"+0 = {wall} UTC"
        if origin is not None:
            clock += f" = load {start - origin:+.2f}s"
        lines.append(f"health ({clock}):")
        lines += [f"+{at - start:.2f}s {address} {what}" for at, address, what in events]
        by_server: dict[str, list[tuple[float, str]]] = {}
        for at, name, why in dials:
            by_server.setdefault(name, []).append((at - start, why))
        lines.append("connections not made:")
        lines += [f"{name} ({self.seen.get(name, '?')}): {len(found)} between +{found[0][0]:.2f}s"
                  f" and +{found[-1][0]:.2f}s, first: {found[0][1]}"
                  for name, found in by_server.items()]
        return "\n".join(lines)
