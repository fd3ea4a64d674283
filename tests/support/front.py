"""A stand-in for Traefik's Docker provider, for tests where Traefik itself cannot run.

`Front` is a small HTTP reverse proxy on 127.0.0.1 whose routing table comes from Docker the
way Traefik v3's Docker provider builds it (`pkg/provider/docker`), so a zero-downtime test
run against it measures the risk a real deploy runs behind Traefik.

The rules modelled, each as Traefik applies them:

- **Which containers.** Only running containers (`State.Running`, so a paused container
  stays in) that are enabled: label `traefik.enable=true`, or any container when
  `exposed_by_default` is set (the project's static config sets `exposedByDefault: false`).
  `project` restricts it to one Compose project, as a `constraints` expression on
  `com.docker.compose.project` would.
- **Health.** A container with a healthcheck is kept only while Docker reports it `healthy`;
  `starting` and `unhealthy` containers are dropped together with the routers they define
  (`allowEmptyServices: false`). Without a healthcheck, running is enough.
- **Routers and services from labels.** `traefik.http.routers.<r>.rule` (`Host(`a`)`, several
  joined by `||`), `traefik.http.routers.<r>.service`,
  `traefik.http.services.<s>.loadbalancer.server.port`. A container without services gets
  one named after its Compose service (`<service>_<project>`, normalised) or its name; a
  container without routers gets one with the default rule ``Host(`<that name>`)``; a router
  without `service` takes the container's only service. Containers defining the same service
  are merged into one load balancer (that is how replicas share traffic); a router defined
  differently by two containers is dropped, as Traefik drops it.
- **Server address.** The container's IP on the network named by `traefik.docker.network`,
  else on the provider's default `network`, else on its first network; the port from the
  label, else the lowest port the container exposes.
- **When the table changes.** Only on Docker events `start`, `die` and `health_status*`,
  each followed by a fresh listing of the containers. `stop` and `kill` change nothing: a
  stopping container keeps its traffic until its process exits or its healthcheck fails
  `retries` times. Each change then goes through the provider throttle
  (`providersThrottleDuration`, 2 s): see `ThrottleMode`.
- **Proxying.** Round-robin over the servers of the matched router's service (Traefik's
  weighted round-robin with equal weights). No retries, unless `retry_attempts` > 1: then
  Traefik's `retry` middleware (`pkg/middlewares/retry/retry.go`): a request whose connection
  to a server could not be made (nothing was written to it) goes through the load balancer
  again, so to the next server, up to `retry_attempts` tries in all; once the request was
  written, a failure is final. A refused or broken upstream
  connection answers 502, an upstream timeout 504 (a connection to the IP of a container
  that has exited hangs until `connect_timeout`, Traefik's 30 s `dialTimeout`), a Host no
  router matches 404 (`404 page not found`). Among routers matching a Host the highest
  priority wins: `traefik.http.routers.<r>.priority` when set (and not 0), else the rule's
  length, Traefik's default.

Where it differs from Traefik:

- Rules: only `Host` joined by `||`; any other rule is recorded in `RoutingTable.errors` and
  its router left out. Entrypoints, TLS and middlewares are ignored: one plain-HTTP listener.
- With `project` set, the event subscription is filtered by that label too, so other
  containers on the host (other tests) do not move its throttle window; Traefik sees every
  container's events, which changes when within the throttle a change lands, never the bound.
- The fallback "first network" is the first by name (Traefik takes Go's random map order).
- One upstream connection per request and the body is buffered, not streamed; a response
  taking longer than `response_timeout` (60 s) is a 504 (Traefik has no such limit).
- The default `ThrottleMode` is `TRAILING`, Traefik's slowest case, not its exact timing.
- When dockerd restarts it reconnects (at most `RECONNECT_ATTEMPTS`, one a second) and
  relists, as Traefik's provider does with a backoff.

Run `python -m tests.support.front [--project P] [--throttle S]` to serve it from a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

DOCKER_SOCK = "/var/run/docker.sock"
DEFAULT_THROTTLE = 2.0
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
REFRESH_ACTIONS = ("start", "die")
HEALTH_ACTION_PREFIX = "health_status"
RECONNECT_ATTEMPTS = 120
RECONNECT_DELAY = 1.0
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-connection", "content-length",
})

_ROUTER_LABEL = re.compile(r"traefik\.http\.routers\.([^.]+)\.(.+)", re.IGNORECASE)
_SERVICE_LABEL = re.compile(r"traefik\.http\.services\.([^.]+)\.(.+)", re.IGNORECASE)
_HOST_MATCHER = re.compile(r"\(*\s*Host\(\s*`([^`]+)`\s*\)\s*\)*", re.IGNORECASE)


class ThrottleMode(StrEnum):
    """How a Docker event becomes a new routing table.

    `TRAILING` (the default): after an event, wait the throttle, then rebuild the table from
    the containers as they are then; events during the wait coalesce into that rebuild. Every
    change takes effect exactly `throttle` (plus the rebuild) after the event that caused it:
    the slowest Traefik can be, and so the case a deploy must survive.

    `TRAEFIK`: Traefik's code exactly. The provider builds a configuration at each event; the
    aggregator publishes it at once unless it published one less than `throttle` ago, in
    which case the latest configuration waits for the end of that interval (a ring buffer of
    one, `maybeThrottledProvide`). A change takes effect between ~0 and `throttle` after its
    event, depending on what happened just before.
    """

    TRAILING = "trailing"
    TRAEFIK = "traefik"


class DialError(OSError):
    """The connection to a server could not be made: nothing was sent, a retry is safe."""


class RuleError(ValueError):
    """A router rule this model does not understand (only `Host` joined by `||` is)."""


def parse_host_rule(rule: str) -> frozenset[str]:
    """The hosts of ``Host(`a`) || Host(`b`)``, lower-cased; anything else is a RuleError."""
    hosts: set[str] = set()
    for part in rule.split("||"):
        match = _HOST_MATCHER.fullmatch(part.strip())
        if match is None:
            raise RuleError(f"unsupported rule {rule!r}: the front models Host(`x`) || ... only")
        hosts.add(match.group(1).strip().lower())
    return frozenset(hosts)


def normalize(name: str) -> str:
    """Traefik's `provider.Normalize`: runs of non-alphanumerics become one '-'."""
    return "-".join(part for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def request_host(header: str | None) -> str:
    """The host part of a Host header, lower-cased, without port (how Traefik's Host matches)."""
    value = (header or "").strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class Server:
    """One load-balancer target: a container's IP and port."""

    container_id: str
    container_name: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Router:
    """A router: the hosts its rule matches and the service it sends them to."""

    name: str
    rule: str
    hosts: frozenset[str]
    service: str
    priority: int = 0

    @property
    def rank(self) -> int:
        """Traefik's priority: the label's value, or the rule's length when unset or 0."""
        return self.priority or len(self.rule)


@dataclass(frozen=True)
class RoutingTable:
    """Routers and services as one Docker provider configuration describes them."""

    routers: tuple[Router, ...] = ()
    services: Mapping[str, tuple[Server, ...]] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def match(self, host: str) -> Router | None:
        """The router for `host`: among those whose rule matches, the highest priority."""
        candidates = [r for r in self.routers if host in r.hosts]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.rank, r.name))

    def servers_for(self, host: str) -> tuple[Server, ...]:
        """The servers a request for `host` is balanced over (empty when none or no router)."""
        router = self.match(host)
        return self.services.get(router.service, ()) if router else ()


def _label_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "t", "yes")


def _compose_service_name(container: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    if labels.get(SERVICE_LABEL) and labels.get(PROJECT_LABEL):
        return normalize(f"{labels[SERVICE_LABEL]}_{labels[PROJECT_LABEL]}")
    return normalize(str(container.get("Name", "")))


def _ip_address(container: Mapping[str, Any], wanted: str | None) -> str:
    networks: Mapping[str, Any] = (container.get("NetworkSettings") or {}).get("Networks") or {}
    if wanted and wanted in networks:
        return str(networks[wanted].get("IPAddress") or "")
    for name in sorted(networks):
        address = networks[name].get("IPAddress") or networks[name].get("GlobalIPv6Address")
        if address:
            return str(address)
    return ""


def _lowest_exposed_port(container: Mapping[str, Any]) -> int | None:
    ports: Mapping[str, Any] = (container.get("NetworkSettings") or {}).get("Ports") or {}
    numbers = sorted(int(key.split("/", 1)[0]) for key in ports)
    return numbers[0] if numbers else None


@dataclass
class _ContainerConfig:
    routers: dict[str, Router]
    services: dict[str, Server]


def _container_config(
    container: Mapping[str, Any], network: str | None, errors: list[str]
) -> _ContainerConfig | None:
    labels: Mapping[str, str] = (container.get("Config") or {}).get("Labels") or {}
    name = str(container.get("Name", "")).lstrip("/")
    router_labels: dict[str, dict[str, str]] = {}
    service_ports: dict[str, str | None] = {}
    for key, value in labels.items():
        if m := _ROUTER_LABEL.fullmatch(key):
            router_labels.setdefault(m.group(1), {})[m.group(2).lower()] = value
        elif m := _SERVICE_LABEL.fullmatch(key):
            port_value = value if m.group(2).lower() == "loadbalancer.server.port" else None
            service_ports[m.group(1)] = port_value or service_ports.get(m.group(1))

    default_name = _compose_service_name(container, labels)
    if not service_ports:
        service_ports[default_name] = None
    if not router_labels:
        if len(service_ports) > 1:
            errors.append(f"{name}: no router created: too many services")
        else:
            router_labels[default_name] = {}

    ip = _ip_address(container, labels.get("traefik.docker.network") or network)
    services: dict[str, Server] = {}
    for service, port_label in service_ports.items():
        port = _lowest_exposed_port(container)
        if port_label:
            port = int(port_label) if port_label.strip().isdigit() else None
        if not ip or port is None:
            errors.append(f"{name}: service {service!r} has no IP or port: container skipped")
            return None
        services[service] = Server(str(container.get("Id", "")), name, ip, port)

    routers: dict[str, Router] = {}
    for router, options in router_labels.items():
        rule = options.get("rule") or f"Host(`{default_name}`)"
        target = options.get("service") or ""
        if not target:
            if len(services) > 1:
                errors.append(f"{name}: router {router!r} has no service and several exist")
                continue
            target = next(iter(services))
        try:
            hosts = parse_host_rule(rule)
        except RuleError as exc:
            errors.append(f"{name}: router {router!r}: {exc}")
            continue
        priority = options.get("priority", "").strip()
        routers[router] = Router(router, rule, hosts, target,
                                 int(priority) if priority.isdigit() else 0)
    return _ContainerConfig(routers, services)


def build_table(
    containers: Iterable[Mapping[str, Any]],
    *,
    project: str | None = None,
    network: str | None = None,
    exposed_by_default: bool = False,
) -> RoutingTable:
    """The routing table Traefik's Docker provider builds from these `docker inspect` objects.

    Pure: the containers' inspect JSON in, routers and services out (see the module's rules).
    """
    errors: list[str] = []
    kept: list[tuple[str, _ContainerConfig]] = []
    for container in containers:
        state = container.get("State") or {}
        labels: Mapping[str, str] = (container.get("Config") or {}).get("Labels") or {}
        if not state.get("Running"):
            continue
        if not _label_bool(labels.get("traefik.enable"), exposed_by_default):
            continue
        if project is not None and labels.get(PROJECT_LABEL) != project:
            continue
        health = state.get("Health")
        if health and health.get("Status") != "healthy":
            continue
        config = _container_config(container, network, errors)
        if config is not None:
            key = f"{_compose_service_name(container, labels)}-{container.get('Id', '')}"
            kept.append((key, config))

    routers: dict[str, Router] = {}
    conflicting: set[str] = set()
    services: dict[str, list[Server]] = {}
    for _, config in sorted(kept, key=lambda item: item[0]):
        for service, server in config.services.items():
            servers = services.setdefault(service, [])
            if all(s.address != server.address for s in servers):
                servers.append(server)
        for name, router in config.routers.items():
            if name in routers and routers[name] != router:
                conflicting.add(name)
            routers.setdefault(name, router)
    for name in sorted(conflicting):
        errors.append(f"router {name!r} defined multiple times with different configurations")
        del routers[name]
    return RoutingTable(
        routers=tuple(routers[name] for name in sorted(routers)),
        services={name: tuple(servers) for name, servers in services.items()},
        errors=tuple(errors),
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class DockerAPI:
    """The few Docker Engine API calls the front needs, over the Unix socket."""

    def __init__(self, socket_path: str = DOCKER_SOCK, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def get(self, path: str) -> Any:
        """GET `path` and decode its JSON; raises RuntimeError on a non-2xx answer."""
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"docker API GET {path}: {resp.status} {body[:200]!r}")
        return json.loads(body)

    def running_containers(self, label_filters: Iterable[str] = ()) -> list[dict[str, Any]]:
        """`docker inspect` of the running (and paused) containers matching the labels."""
        filters = urllib.parse.quote(json.dumps({"label": list(label_filters)}))
        inspected: list[dict[str, Any]] = []
        for summary in self.get(f"/containers/json?filters={filters}"):
            try:
                inspected.append(self.get(f"/containers/{summary['Id']}/json"))
            except RuntimeError:
                continue
        return inspected

    def events(self, label_filters: Iterable[str] = ()) -> EventStream:
        """Open the container event stream; events are read from the returned stream."""
        filters = {"type": ["container"], "label": list(label_filters)}
        conn = _UnixHTTPConnection(self.socket_path, None)
        conn.request("GET", "/events?filters=" + urllib.parse.quote(json.dumps(filters)))
        resp = conn.getresponse()
        if resp.status != 200:
            conn.close()
            raise RuntimeError(f"docker API events: {resp.status}")
        return EventStream(conn, resp)


class EventStream:
    """Docker events as decoded JSON objects, until `close()` or the daemon ends the stream."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            while True:
                try:
                    line = self._resp.readline()
                except (OSError, ValueError, AttributeError, http.client.HTTPException):
                    return
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            with contextlib.suppress(OSError, AttributeError):
                self._conn.close()

    def close(self) -> None:
        """End the stream: the reading thread sees end-of-stream and closes the connection."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class Event:
    """A Docker event the front saw (`at` is `time.monotonic()`)."""

    at: float
    action: str
    container: str
    triggers_refresh: bool


@dataclass(frozen=True)
class Refresh:
    """A routing table taking effect: when, why, and which containers it routes to."""

    at: float
    reason: str
    backends: tuple[str, ...]


class Front:
    """The Traefik stand-in: a reverse proxy on 127.0.0.1 routing by Docker's labels and health.

    `start()` reads the current containers, subscribes to Docker events and serves on
    `url`; `stop()` ends it. Counters for debugging: `routed` (requests per backend
    container), `statuses` (responses per status code), `events` and `refreshes`.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        throttle: float = DEFAULT_THROTTLE,
        mode: ThrottleMode | str = ThrottleMode.TRAILING,
        network: str | None = None,
        exposed_by_default: bool = False,
        connect_timeout: float = 30.0,
        response_timeout: float = 60.0,
        port: int = 0,
        docker_socket: str = DOCKER_SOCK,
        retry_attempts: int = 1,
    ) -> None:
        self.project = project
        self.throttle = throttle
        self.mode = ThrottleMode(mode)
        self.network = network
        self.exposed_by_default = exposed_by_default
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.docker = DockerAPI(docker_socket)
        self.retry_attempts = max(1, retry_attempts)
        self.routed: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.dial_failures: list[tuple[float, str, str]] = []
        """(monotonic time, server name, why) of each connection that could not be made."""
        self.statuses: Counter[int] = Counter()
        self.events: list[Event] = []
        self.refreshes: list[Refresh] = []
        self.errors: list[str] = []
        self._requested_port = port
        self._table = RoutingTable()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._rr: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._pending_since: float | None = None
        self._pending_reason = ""
        self._ring: tuple[RoutingTable, str] | None = None
        self._threads: list[threading.Thread] = []
        self._stream: EventStream | None = None
        self._server: _ProxyServer | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the front is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def table(self) -> RoutingTable:
        """The routing table in effect now."""
        return self._table

    def backends(self, host: str) -> list[str]:
        """Names of the containers that requests for `host` are balanced over right now."""
        return [s.container_name for s in self._table.servers_for(request_host(host))]

    def wait_for(
        self, predicate: Callable[[RoutingTable], bool], timeout: float = 30.0
    ) -> float:
        """Block until the table in effect satisfies `predicate`; returns the seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        with self._changed:
            while not predicate(self._table):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"routing table did not reach the expected state in {timeout}s; "
                        f"now {self._describe(self._table)}"
                    )
                self._changed.wait(remaining)
        return time.monotonic() - start

    def wait_for_backends(self, host: str, names: Iterable[str], timeout: float = 30.0) -> float:
        """Block until requests for `host` go to exactly the containers `names`."""
        wanted = sorted(names)
        key = request_host(host)
        return self.wait_for(
            lambda t: sorted(s.container_name for s in t.servers_for(key)) == wanted, timeout
        )

    def refreshes_since(self, at: float) -> list[Refresh]:
        """Tables that took effect at or after monotonic time `at`."""
        with self._lock:
            return [r for r in self.refreshes if r.at >= at]

    def start(self) -> Self:
        """Subscribe to Docker events, load the current table, serve; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._subscribe()
        initial = self._build()
        if self.mode is ThrottleMode.TRAEFIK:
            self._ring = (initial, "initial")
            self._wakeup.set()
            self._spawn(self._publish_loop, "publisher")
        else:
            self._apply(initial, "initial")
            self._spawn(self._trailing_loop, "throttle")
        self._spawn(self._watch, "events")
        self._server = _ProxyServer(("127.0.0.1", self._requested_port), self)
        self._spawn(self._server.serve_forever, "http")
        if self.mode is ThrottleMode.TRAEFIK:
            self.wait_for(lambda _t: bool(self.refreshes), timeout=5.0)
        return self

    def stop(self) -> None:
        """Stop serving and watching Docker (idempotent)."""
        self._stopping.set()
        self._wakeup.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            if self._stream is not None:
                self._stream.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self._server = None
        self._stream = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def summary(self) -> str:
        """One line per counter, for failure messages and benchmark logs."""
        with self._lock:
            routed = dict(self.routed)
            statuses = dict(self.statuses)
            refreshes = [
                f"+{r.at - self.refreshes[0].at:.2f}s {r.reason}: {list(r.backends)}"
                for r in self.refreshes
            ]
        lines = [f"routed: {routed}", f"statuses: {statuses}", "refreshes:", *refreshes]
        if self._table.errors or self.errors:
            lines.append(f"errors: {[*self._table.errors, *self.errors]}")
        return "\n".join(lines)

    def _label_filters(self) -> list[str]:
        return [f"{PROJECT_LABEL}={self.project}"] if self.project is not None else []

    def _build(self) -> RoutingTable:
        return build_table(
            self.docker.running_containers(self._label_filters()),
            project=self.project, network=self.network,
            exposed_by_default=self.exposed_by_default,
        )

    def _try_build(self) -> RoutingTable | None:
        """`_build`, or None (recorded in `errors`) when Docker did not answer.

        Traefik likewise logs a failed container listing and keeps its last configuration.
        """
        try:
            return self._build()
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
            with self._lock:
                self.errors.append(f"listing containers failed: {exc!r}")
            return None

    def _apply(self, table: RoutingTable, reason: str) -> None:
        backends = sorted(
            {s.container_name for servers in table.services.values() for s in servers}
        )
        with self._changed:
            self._table = table
            self._rr.clear()
            self.refreshes.append(Refresh(time.monotonic(), reason, tuple(backends)))
            self._changed.notify_all()

    def _describe(self, table: RoutingTable) -> str:
        routes = {r.name: [s.container_name for s in table.services.get(r.service, ())]
                  for r in table.routers}
        return f"routers {routes}, errors {list(table.errors)}"

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"front-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _subscribe(self) -> None:
        """Start watching for changes (the Docker provider: the event stream)."""
        self._stream = self.docker.events(self._label_filters())

    def _watch(self) -> None:
        """The thread that turns changes into tables (the Docker provider: events)."""
        self._event_loop()

    def _event_loop(self) -> None:
        """Read events; when the stream breaks (dockerd restarted), reconnect and relist.

        Traefik's provider does the same, with a backoff; here the attempts are bounded.
        """
        for attempt in range(RECONNECT_ATTEMPTS):
            if attempt and not self._reconnect():
                if self._stopping.is_set():
                    return
                continue
            stream = self._stream
            assert stream is not None
            for raw in stream:
                if self._stopping.is_set():
                    return
                action = str(raw.get("Action") or raw.get("status") or "")
                attributes = (raw.get("Actor") or {}).get("Attributes") or {}
                container = str(attributes.get("name") or raw.get("id", ""))[:64]
                relevant = action in REFRESH_ACTIONS or action.startswith(HEALTH_ACTION_PREFIX)
                with self._lock:
                    self.events.append(Event(time.monotonic(), action, container, relevant))
                if relevant:
                    self._changed_in_docker(f"{action} {container}")
            if self._stopping.is_set():
                return
            with self._lock:
                self.errors.append("docker event stream ended; reconnecting")

    def _reconnect(self) -> bool:
        if self._stopping.wait(RECONNECT_DELAY):
            return False
        try:
            stream = self.docker.events(self._label_filters())
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            with self._lock:
                self.errors.append(f"docker events: {exc!r}")
            return False
        with self._lock:
            if self._stopping.is_set():
                stream.close()
                return False
            self._stream = stream
        self._changed_in_docker("reconnected to docker")
        return True

    def _changed_in_docker(self, reason: str) -> None:
        if self.mode is ThrottleMode.TRAEFIK:
            table = self._try_build()
            if table is None:
                return
            with self._lock:
                self._ring = (table, reason)
        else:
            with self._lock:
                if self._pending_since is None:
                    self._pending_since = time.monotonic()
                    self._pending_reason = reason
                else:
                    self._pending_reason += f", {reason}"
        self._wakeup.set()

    def _trailing_loop(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                since = self._pending_since
            if since is None:
                continue
            if self._stopping.wait(max(0.0, since + self.throttle - time.monotonic())):
                return
            with self._lock:
                reason = self._pending_reason
                self._pending_since = None
            table = self._try_build()
            if table is not None:
                self._apply(table, reason)

    def _publish_loop(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                item, self._ring = self._ring, None
            if item is None:
                continue
            self._apply(*item)
            if self._stopping.wait(self.throttle):
                return
            self._wakeup.set()

    def _next_server(self, host: str) -> tuple[Router | None, Server | None]:
        table = self._table
        router = table.match(host)
        if router is None:
            return None, None
        servers = table.services.get(router.service, ())
        if not servers:
            return router, None
        with self._lock:
            index = self._rr[router.service]
            self._rr[router.service] = index + 1
        return router, servers[index % len(servers)]

    def _proxy(self, handler: _ProxyHandler) -> None:
        host = request_host(handler.headers.get("Host"))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        for attempt in range(1, self.retry_attempts + 1):
            router, server = self._next_server(host)
            if router is None:
                self._reply(handler, 404, b"404 page not found\n")
                return
            if server is None:
                self._reply(handler, 503, b"no available server\n")
                return
            with self._lock:
                self.routed[server.container_name] += 1
            try:
                status, headers, data = self._forward(handler, server, body)
            except DialError as exc:
                with self._lock:
                    self.dial_failures.append((time.monotonic(), server.container_name, str(exc)))
                if attempt < self.retry_attempts:
                    with self._lock:
                        self.retried[server.container_name] += 1
                    continue
                self._reply(handler, 504 if isinstance(exc.__cause__, TimeoutError) else 502,
                            b"Bad Gateway")
                return
            except TimeoutError:
                self._reply(handler, 504, b"Gateway Timeout")
                return
            except (OSError, http.client.HTTPException):
                self._reply(handler, 502, b"Bad Gateway")
                return
            self._reply(handler, status, data, headers)
            return

    def _new_connection(self, server: Server) -> http.client.HTTPConnection:
        """An upstream connection, not yet connected."""
        return http.client.HTTPConnection(server.ip, server.port, timeout=self.connect_timeout)

    def _connection(self, server: Server) -> http.client.HTTPConnection:
        """A connected upstream connection; DialError when it cannot be made (nothing sent)."""
        conn = self._new_connection(server)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise DialError(str(exc)) from exc
        return conn

    def _forward(
        self, handler: _ProxyHandler, server: Server, body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = self._connection(server)
        try:
            assert conn.sock is not None
            conn.sock.settimeout(self.response_timeout)
            conn.putrequest(handler.command, handler.path, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            client_ip = handler.client_address[0]
            conn.putheader("X-Forwarded-For", client_ip)
            conn.putheader("X-Forwarded-Host", handler.headers.get("Host", ""))
            conn.putheader("X-Forwarded-Proto", "http")
            conn.putheader("X-Real-Ip", client_ip)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            return resp.status, headers, data
        finally:
            conn.close()

    def _reply(
        self,
        handler: _ProxyHandler,
        status: int,
        data: bytes,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        with self._lock:
            self.statuses[status] += 1
        try:
            handler.send_response(status)
            for name, value in headers or [("Content-Type", "text/plain; charset=utf-8")]:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        except OSError:
            handler.close_connection = True


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], front: Front) -> None:
        self.front = front
        super().__init__(address, _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def _handle(self) -> None:
        self.server.front._proxy(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    """Serve the front until interrupted, printing each table change."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--project", help="only this Compose project's containers")
    parser.add_argument("--throttle", type=float, default=DEFAULT_THROTTLE)
    parser.add_argument("--mode", choices=[m.value for m in ThrottleMode],
                        default=ThrottleMode.TRAILING.value)
    parser.add_argument("--network", help="default Docker network (providers.docker.network)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with Front(project=args.project, throttle=args.throttle, mode=args.mode,
               network=args.network, port=args.port) as front:
        print(f"front listening on {front.url}", flush=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                for refresh in front.refreshes[seen:]:
                    print(f"{refresh.reason}: {list(refresh.backends)}", flush=True)
                seen = len(front.refreshes)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
