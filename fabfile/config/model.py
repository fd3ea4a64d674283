"""The typed, frozen shape of an environment; `loader.py` builds it from YAML and validates it.

Field metadata `check` names a function from `checks.py`; types drive the rest of the
validation (unknown keys, wrong types, missing values) generically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from . import checks
from .secrets import Secret


def _check(fn: checks.Check, default: Any = ..., **kw: Any) -> Any:
    if default is ...:
        return field(metadata={"check": fn}, **kw)
    return field(default=default, metadata={"check": fn}, **kw)


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Compose `deploy.resources.limits` of each web container."""

    cpus: float = _check(checks.positive, 1.0)
    memory: str = _check(checks.memory, "512m")


@dataclass(frozen=True, kw_only=True)
class Healthcheck:
    """The web containers' Docker healthcheck; timings in seconds. Traefik routes only to
    `healthy` containers, and a deploy drains a container by making this check fail.

    `command` unset: `render.DEFAULT_PROBE`, Python's urllib against `app.health_path` (any
    image with `/bin/sh` and `python3`, so every FastAPI image). A string is the shell form:
    it runs in the image's `/bin/sh` after the drain-file test, so it only has to probe the
    app (`curl -fsS http://127.0.0.1:8000/health`). A list is the exec form, run as is with
    no shell (distroless images): the program itself must fail while `app.drain_file`
    exists, which the deploy creates with `docker cp` when the image has no shell.

    Self-healing (`fabfile/heal/`): with `self_heal`, a watcher on each host restarts a web
    container that has been `unhealthy` for `restart_after` seconds (`docker restart` with
    `restart_grace` seconds to stop), never one that is draining or while a deploy holds the
    lock, and at most `max_restarts` times within `restart_window` seconds: then it alerts
    Slack once and leaves the container to a person. The defaults fit the 30 s recovery
    target: (interval + timeout) x retries = 12 s to detect a hang, 5 s, at most 3 s to
    stop, a restart and the first passing check (interval), Traefik's 2 s throttle.
    """

    interval: int = _check(checks.positive, 2)
    timeout: int = _check(checks.positive, 2)
    retries: int = _check(checks.positive, 3)
    start_period: int = _check(checks.non_negative, 10)
    command: str | tuple[str, ...] | None = _check(checks.command_part, None)
    self_heal: bool = True
    restart_after: int = _check(checks.positive, 5)
    restart_grace: int = _check(checks.positive, 3)
    max_restarts: int = _check(checks.positive, 3)
    restart_window: int = _check(checks.positive, 600)


@dataclass(frozen=True, kw_only=True)
class Build:
    """How `inv build` makes `app.image` with BuildKit (`docker buildx build`). Paths are
    relative to the project root (the folder holding `environments/`); `dockerfile` defaults
    to the context's `Dockerfile`. `secrets` maps a BuildKit secret id to a local file a build
    step may read (`RUN --mount=type=secret,id=ID`) without the image keeping it: a CA
    bundle, a package index token."""

    context: str = _check(checks.project_path, ".")
    dockerfile: str | None = _check(checks.project_path, None)
    target: str | None = _check(checks.name, None)
    args: dict[str, str] = _check(checks.build_map, default_factory=dict)
    platform: str | None = _check(checks.platform, None)
    secrets: dict[str, str] = _check(checks.build_map, default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class App:
    """The web service: what runs, how it proves it is healthy, what it is told."""

    name: str = _check(checks.name)
    image: str = _check(checks.image)
    tag: str = _check(checks.tag)
    port: int = _check(checks.port, 8000)
    health_path: str = _check(checks.url_path, "/health")
    migrate_command: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    """The app's command as the image runs it (ENTRYPOINT + CMD); `deploy.engine: swarm` needs
    it to run the app under its draining entrypoint (`fabfile/swarm/scripts/entrypoint.sh`)."""
    replicas: int = _check(checks.positive, 1)
    resources: Resources = field(default_factory=Resources)
    healthcheck: Healthcheck = field(default_factory=Healthcheck)
    drain_file: str = _check(checks.abs_path, "/tmp/drain")  # noqa: S108 - inside the container
    stop_grace_period: int = _check(checks.positive, 30)
    env: dict[str, str] = _check(checks.env_values, default_factory=dict)
    secret_env: dict[str, Secret] = _check(checks.env_values, default_factory=dict)
    sentry_dsn: Secret | None = None
    build: Build = field(default_factory=Build)


@dataclass(frozen=True, kw_only=True)
class Host:
    """One VPS. `transport: local` drives the local Docker Engine without SSH."""

    address: str = _check(checks.host_address)
    transport: Literal["ssh", "local"] = "ssh"
    user: str = _check(checks.unix_user, "deploy")
    port: int = _check(checks.port, 22)
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    host_key_policy: Literal["strict", "accept-new"] = "strict"
    connect_timeout: int = _check(checks.positive, 10)
    role: Literal["manager", "worker"] | None = None
    """Its part in the swarm (`deploy.engine: swarm` only)."""
    advertise_address: str | None = _check(checks.ip_address, None)
    """The address other nodes reach it at (swarm only; default: `address` when it is an IP)."""
    labels: dict[str, str] = _check(checks.labels, default_factory=dict)
    """Extra Docker node labels (swarm only), for your own placement constraints."""

    @property
    def label(self) -> str:
        return "local" if self.transport == "local" else f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class Smoke:
    """Post-roll smoke test: `failures` failed rounds within `window` seconds roll back;
    `checks` good rounds pass. `urls` replace `https://<domain><health_path>`; `host_header`
    is sent with them when they address the proxy directly (http://127.0.0.1:8080/health)."""

    failures: int = _check(checks.positive, 3)
    window: int = _check(checks.positive, 120)
    interval: float = _check(checks.positive, 2.0)
    urls: tuple[str, ...] = _check(checks.https_url, ())
    host_header: str | None = _check(checks.domain, None)
    checks: int = _check(checks.positive, 5)
    verify_tls: bool = True


@dataclass(frozen=True, kw_only=True)
class Verify:
    """Checked after the new web containers turn healthy and before any old one is drained:
    every path must answer 2xx from every new container, requested on the Docker network
    from the host (a healthy container can still fail its API). No paths: the health path."""

    paths: tuple[str, ...] = _check(checks.url_path_query, ())
    timeout: float = _check(checks.positive, 5.0)


@dataclass(frozen=True, kw_only=True)
class Swarm:
    """How `deploy.engine: swarm` updates services and how Traefik's Swarm provider routes.

    `refresh_seconds` is the provider's poll interval (Traefik's `refreshSeconds`, 15 s by
    default there): a task keeps serving that long, plus `deploy.traefik_throttle` and
    `deploy.drain_margin`, after its SIGTERM. `retry_attempts` and `dial_timeout` send a
    request whose server cannot be reached (a lost node) to the next one. `update_*` and
    `monitor` are the services' `update_config`; `resolve_image: never` deploys images that
    are in no registry (images loaded on every node by hand).
    """

    refresh_seconds: float = _check(checks.positive, 5.0)
    retry_attempts: int = _check(checks.positive, 4)
    dial_timeout: float = _check(checks.positive, 1.0)
    update_parallelism: int = _check(checks.positive, 1)
    update_delay: float = _check(checks.non_negative, 0.0)
    monitor: float = _check(checks.positive, 10.0)
    resolve_image: Literal["always", "changed", "never"] = "always"


@dataclass(frozen=True, kw_only=True)
class Deploy:
    """Where releases live on the host and how the rolling update paces itself."""

    app_dir: str = _check(checks.abs_path, "/srv/app")
    network: str = _check(checks.name, "web")
    keep_releases: int = _check(checks.positive, 5)
    traefik_throttle: float = _check(checks.non_negative, 2.0)
    drain_margin: float = _check(checks.non_negative, 1.0)
    health_timeout: int = _check(checks.positive, 120)
    lock_stale_after: int = _check(checks.stale_after, 60)
    """A host's lock is stale once its holder's heartbeats (its client's and its detached
    phase's) stopped this many seconds ago and no phase of it runs: `deploy --lock-wait`
    then takes it over."""
    confirm: bool = False
    smoke: Smoke = field(default_factory=Smoke)
    verify: Verify = field(default_factory=Verify)
    engine: Literal["compose", "swarm"] = "compose"
    swarm: Swarm = field(default_factory=Swarm)

    @property
    def heartbeat(self) -> int:
        """Seconds between two heartbeats of a lock's holder: a sixth of `lock_stale_after`,
        1 to 5 s."""
        return max(1, min(5, self.lock_stale_after // 6))


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    average: int = _check(checks.positive, 100)
    burst: int = _check(checks.positive, 200)


@dataclass(frozen=True, kw_only=True)
class Traefik:
    """The edge proxy. `enabled: false` leaves it out (the test bed's stand-in replaces it)."""

    enabled: bool = True
    image: str = "traefik:v3.1"
    acme_email: str = _check(checks.email)
    acme_ca_server: str | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    access_log: bool = True
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"


@dataclass(frozen=True, kw_only=True)
class Pool:
    """Connection-pool settings handed to the app as environment variables."""

    min_size: int = _check(checks.non_negative, 1)
    max_size: int = _check(checks.positive, 10)
    timeout: int = _check(checks.positive, 30)


@dataclass(frozen=True, kw_only=True)
class LocalPostgres:
    """A PostgreSQL service inside the stack (the `local` environment only)."""

    image: str = "postgres:15"
    user: str = _check(checks.unix_user, "app")
    database: str = _check(checks.name, "app")
    password: Secret | None = None


@dataclass(frozen=True, kw_only=True)
class Database:
    """Managed PostgreSQL (`url`, TLS required) or a `local` service; pool settings for the app.

    `backend: sqlite` keeps the app on its SQLite file at `sqlite_path` on the host (bind-mounted
    into the web containers, see `render.SQLITE_MOUNT`) until `inv db.cutover` moves it to `url`.
    """

    url: Secret | None = None
    local: LocalPostgres | None = None
    pool: Pool = field(default_factory=Pool)
    backend: Literal["postgres", "sqlite"] = "postgres"
    sqlite_path: str | None = _check(checks.abs_path, None)


NGINX_CONF = ("server { listen 8080; add_header Retry-After RETRY_AFTER always; "
              "location = /__maintenance/health { return 200 ok; } "
              "location / { return 503; } error_page 503 /maintenance.html; "
              "location = /maintenance.html { internal; root /usr/share/nginx/html; } }")
#: nginx answering 503 with the page from $MAINTENANCE_PAGE and `Retry-After:
#: $MAINTENANCE_RETRY_AFTER` on every path but the health path.
NGINX_MAINTENANCE = (
    "sh", "-c",
    'printf "%s" "$MAINTENANCE_PAGE" > /usr/share/nginx/html/maintenance.html && '
    'printf "%s" "$1" | sed "s/RETRY_AFTER/${MAINTENANCE_RETRY_AFTER:-300}/" '
    '> /etc/nginx/conf.d/default.conf && exec nginx -g "daemon off;"',
    "sh", NGINX_CONF,
)


@dataclass(frozen=True, kw_only=True)
class Maintenance:
    """The page `inv maintenance.on`, `db.cutover` and a live `backup.restore` serve: one
    container on the edge network with a Traefik router per domain, answering 503, a
    `Retry-After` header and the rendered `templates/maintenance.html.j2` (handed over in
    $MAINTENANCE_PAGE) on every path.

    `health_path` must answer 200 (the Docker healthcheck, with wget, probes it) and is the
    one path that does; `command: []` keeps the image's own command, which must then send
    `Retry-After: $MAINTENANCE_RETRY_AFTER` itself (`retry_after`, seconds).
    """

    image: str = "nginx:1.27-alpine"
    command: tuple[str, ...] = NGINX_MAINTENANCE
    port: int = _check(checks.port, 8080)
    health_path: str = _check(checks.url_path, "/__maintenance/health")
    env: dict[str, str] = _check(checks.env_values, default_factory=dict)
    title: str = "Down for maintenance"
    message: str = "We are working on the site. We will be back in a few minutes."
    retry_after: int = _check(checks.positive, 300)
    ready_timeout: int = _check(checks.positive, 60)


@dataclass(frozen=True, kw_only=True)
class Backup:
    """Dumps to S3-compatible storage; the host keeps the newest `keep_local` in `cache_dir`.

    `client_image` runs pg_dump/pg_restore on the host (`{major}`: the server's major version);
    `client: host` uses the host's own tools from `client_bin_dir` (else its PATH). Dumps up to
    `multipart_threshold_mb` go up in one PUT, larger ones in `part_size_mb` parts,
    `upload_concurrency` at a time, through URLs valid for `url_expiry` seconds. Retention:
    `retention_days`, plus the newest of each of the last `keep_daily` days, `keep_weekly`
    weeks and `keep_monthly` months. `restore_jobs: 0` uses the host's CPU count.
    """

    bucket: str = _check(checks.host_address)
    prefix: str = "backups"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    retention_days: int = _check(checks.positive, 30)
    cache_dir: str = _check(checks.abs_path, "/var/backups/app")
    keep_local: int = _check(checks.positive, 7)
    client: Literal["docker", "host"] = "docker"
    multipart_threshold_mb: int = _check(checks.positive, 64)
    client_image: str = "postgres:{major}"
    client_bin_dir: str | None = _check(checks.abs_path, None)
    part_size_mb: int = _check(checks.positive, 16)
    upload_concurrency: int = _check(checks.positive, 4)
    url_expiry: int = _check(checks.positive, 43200)
    keep_daily: int = _check(checks.non_negative, 0)
    keep_weekly: int = _check(checks.non_negative, 0)
    keep_monthly: int = _check(checks.non_negative, 0)
    restore_jobs: int = _check(checks.non_negative, 0)


@dataclass(frozen=True, kw_only=True)
class Registry:
    """Where `app.image` lives when it is private: `inv build --push` logs in here, and
    every deploy confirms its tag exists here before touching a host and pulls on each host
    with these credentials in a throwaway Docker config that is deleted right after.
    Without a `registry`, images are public: no login anywhere. `ca_file` is a PEM bundle
    trusted on top of the system's CAs for the registry API (a private registry's CA)."""

    server: str = _check(checks.registry_server)
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = _check(checks.file_path, None)


@dataclass(frozen=True, kw_only=True)
class Notifications:
    slack_webhook: Secret | None = None


def _client_image(value: object) -> str | None:
    text = str(value)
    name, _, tag = text.rpartition(":") if ":" in text.split("/")[-1] else (text, "", "")
    if checks.image(name) is None and (not tag or checks.tag(tag) is None):
        return None
    return "an image reference such as postgres:17-alpine"


@dataclass(frozen=True, kw_only=True)
class Checks:
    """Thresholds of `inv doctor` and `inv certs.check`.

    `ca_file` is a PEM bundle trusted on top of the system's CAs when certificates are
    checked: a private CA, or Let's Encrypt's staging roots for a staging environment.
    `db_client_image` runs `psql` on the host to prove the database is reachable from there.
    """

    cert_warn_days: int = _check(checks.positive, 15)
    min_free_disk_gb: float = _check(checks.positive, 5.0)
    max_backup_age_hours: float = _check(checks.positive, 26.0)
    ca_file: str | None = None
    db_client_image: str = _check(_client_image, "postgres:17-alpine")


@dataclass(frozen=True, kw_only=True)
class Config:
    """One resolved environment: base.yaml deep-merged with <env>.yaml, secrets resolved."""

    project: str = _check(checks.name)
    app: App = field()
    traefik: Traefik = field()
    domains: tuple[str, ...] = ()
    hosts: tuple[Host, ...] = ()
    deploy: Deploy = field(default_factory=Deploy)
    database: Database = field(default_factory=Database)
    backup: Backup | None = None
    notifications: Notifications = field(default_factory=Notifications)
    checks: Checks = field(default_factory=Checks)
    maintenance: Maintenance = field(default_factory=Maintenance)
    registry: Registry | None = None
    env: str = ""
    sources: tuple[str, ...] = ()
    root: str = ""
    """The project root (where `environments/` and `.env.<env>` live): relative paths of the
    config (build context, Dockerfile) start there."""

    @property
    def image_ref(self) -> str:
        return f"{self.app.image}:{self.app.tag}"
