"""The host-side steps of a snapshot and a cutover, as pure builders of `Step`s.

Each is one round trip running a script of `scripts/` (`site.sh` with the deploy's `lib.sh`
rollout functions prepended) with its values as positional arguments. Scripts print
`@key value` markers that `fabfile.deploy.rollout.markers` reads.

The maintenance page is a plain `docker run` container (not part of the Compose project's
services, so no deploy ever touches it) named `<project>-maintenance` on the edge network.
It carries the Compose project label (so a proxy constrained to the project, and `inv
status`, see it) and one Traefik router per domain with the web routers' Host rules at
priority 1, the lowest: while a web container is healthy its routers win; once every web
container is drained, Traefik drops their routers and the maintenance routers take all
traffic. Its healthcheck fails while `MAINTENANCE_DRAIN` exists, so it leaves the proxy the
same way web containers do before it is removed.

`inv maintenance.on` puts up the same container as a *manual* page (`Manual`): its routers
(named apart, so both pages may route side by side while one replaces the other) outrank the
web routers (`MANUAL_PRIORITY`), so the page takes every request while the web containers
keep running, healthy: a deploy under `--during-maintenance`, `inv exec --reuse` or a
restarting container cannot bring the site back before `inv maintenance.off`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from fabfile.config import Config
from fabfile.deploy import rollout
from fabfile.remote import Step
from fabfile.render import render
from fabfile.shell import Scripts

MAINTENANCE_DRAIN = "/tmp/maintenance-drain"  # noqa: S108 - inside the container
MARKER = "database-backend"
MANUAL_PRIORITY = 1_000_000
"""Above any web router's (Traefik's default priority is the rule's length), below Traefik's
limit (MaxInt32 - 1000)."""
MANUAL_LABEL = "shipyard.maintenance"

SCRIPTS = Scripts("fabfile.cutover", {
    "snapshot": (),
    "fetch": (),
    "site": ("fabfile.deploy:lib",),
    "target_schema": (),
})


def _site(title: str, *args: str, timeout: float | None = None) -> Step:
    return SCRIPTS.step(title, "site", *args, timeout=timeout)


def snapshot_step(cfg: Config) -> Step:
    assert cfg.database.sqlite_path is not None
    return SCRIPTS.step(f"snapshot {cfg.database.sqlite_path} (SQLite online backup)",
                        "snapshot", cfg.database.sqlite_path, cfg.deploy.app_dir, timeout=3600)


def fetch_step(remote_path: str) -> Step:
    """Streams the snapshot back and removes its directory on the host."""
    return SCRIPTS.step(f"download {remote_path}", "fetch", remote_path, timeout=3600)


def maintenance_name(cfg: Config) -> str:
    return f"{cfg.project}-maintenance"


@dataclass(frozen=True)
class Manual:
    """An operator's page (`inv maintenance.on`): who put it up, when, and what it says."""

    by: str
    since: str
    message: str | None = None


def maintenance_page(cfg: Config, message: str | None = None) -> str:
    m = cfg.maintenance
    return render("maintenance.html.j2", {"maintenance": {
        "title": m.title, "message": m.message if message is None else message}})


def maintenance_labels(cfg: Config, manual: Manual | None = None) -> dict[str, str]:
    """Traefik labels of the page: a router per domain with the web routers' rule, at
    priority 1 (below the web routers), or `MANUAL_PRIORITY` for an operator's page."""
    m = cfg.maintenance
    labels = {
        "com.docker.compose.project": cfg.project,
        "shipyard.role": "maintenance",
        "traefik.enable": "true",
        "traefik.docker.network": cfg.deploy.network,
        "traefik.http.services.maintenance.loadbalancer.server.port": str(m.port),
    }
    name, priority = ("maintenance-manual", MANUAL_PRIORITY) if manual else ("maintenance", 1)
    for i, domain in enumerate(cfg.domains, start=1):
        router = f"traefik.http.routers.{name}-{i}"
        labels |= {
            f"{router}.rule": f"Host(`{domain}`)",
            f"{router}.priority": str(priority),
            f"{router}.entrypoints": "websecure",
            f"{router}.tls": "true",
            f"{router}.tls.certresolver": "letsencrypt",
            f"{router}.service": "maintenance",
        }
    return labels


def maintenance_run_argv(cfg: Config, manual: Manual | None = None) -> tuple[str, ...]:
    """`docker run` of the page; an operator's page also carries `MANUAL_LABEL`s (who, since,
    the message, and `.spec`: a digest of everything else, to tell whether the page that is
    up already says and routes the same)."""
    argv = _run_argv(cfg, manual)
    if manual is None:
        return argv
    spec = hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:16]
    extra = {MANUAL_LABEL: "manual", f"{MANUAL_LABEL}.by": manual.by,
             f"{MANUAL_LABEL}.since": manual.since, f"{MANUAL_LABEL}.spec": spec,
             f"{MANUAL_LABEL}.message": (manual.message or "")[:200]}
    at = argv.index("--label")
    return (*argv[:at], *(a for k, v in sorted(extra.items()) for a in ("--label", f"{k}={v}")),
            *argv[at:])


def manual_spec(argv: tuple[str, ...]) -> str:
    """The `.spec` label of an operator's page's `docker run` argv."""
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"{MANUAL_LABEL}.spec="))


def _run_argv(cfg: Config, manual: Manual | None) -> tuple[str, ...]:
    m, hc = cfg.maintenance, cfg.app.healthcheck
    probe = (f"test ! -e {MAINTENANCE_DRAIN} && "
             f"wget -q -O /dev/null http://127.0.0.1:{m.port}{m.health_path} || exit 1")
    argv = ["docker", "run", "-d", "--name", maintenance_name(cfg), "--network",
            cfg.deploy.network, "--restart", "unless-stopped",
            "--health-cmd", probe, "--health-interval", f"{hc.interval}s",
            "--health-timeout", f"{hc.timeout}s", "--health-retries", str(hc.retries),
            "--health-start-period", f"{hc.start_period}s",
            "--log-opt", "max-size=10m", "--log-opt", "max-file=2"]
    for key, value in sorted(maintenance_labels(cfg, manual).items()):
        argv += ["--label", f"{key}={value}"]
    page = maintenance_page(cfg, manual.message if manual else None)
    for key, value in sorted({**cfg.maintenance.env, "MAINTENANCE_PAGE": page,
                              "MAINTENANCE_RETRY_AFTER": str(m.retry_after)}.items()):
        argv += ["-e", f"{key}={value}"]
    return (*argv, m.image, *m.command)


def maintenance_on(cfg: Config) -> Step:
    limit = cfg.maintenance.ready_timeout + cfg.app.healthcheck.start_period
    return _site("maintenance on: start the page, wait until the proxy routes to it",
                    "maint-up", maintenance_name(cfg), str(limit), f"{rollout.settle(cfg):g}",
                    *maintenance_run_argv(cfg), timeout=limit + rollout.settle(cfg) + 120)


def manual_on(cfg: Config, manual: Manual) -> Step:
    """Put up (or keep, when the page up already says and routes the same) an operator's
    page; a page that differs is replaced with no gap: the new one takes the traffic before
    the old one is drained and removed."""
    limit = cfg.maintenance.ready_timeout + cfg.app.healthcheck.start_period
    argv = maintenance_run_argv(cfg, manual)
    return _site("maintenance on: start the page, wait until the proxy routes to it",
                 "maint-on", maintenance_name(cfg), manual_spec(argv), str(limit),
                 f"{rollout.settle(cfg):g}", str(rollout.unhealthy_timeout(cfg)), *argv,
                 timeout=limit + rollout.drain_bound(cfg) + 120)


def drain_web(cfg: Config) -> Step:
    return _site("drain the web containers: all traffic to the maintenance page",
                    "drain-web", cfg.project, cfg.app.name, cfg.app.drain_file,
                    f"{rollout.settle(cfg):g}", str(rollout.unhealthy_timeout(cfg)),
                    timeout=rollout.drain_bound(cfg) + 60)


def stop_web(cfg: Config) -> Step:
    """Drain the web containers (all traffic to the maintenance page), stop and remove them:
    nothing holds the database any more. `rollout.roll_steps` starts them again."""
    return _site("stop the web containers: drained first, all traffic to the maintenance page",
                 "stop-web", cfg.project, cfg.app.name, cfg.app.drain_file,
                 f"{rollout.settle(cfg):g}", str(cfg.app.stop_grace_period),
                 str(rollout.unhealthy_timeout(cfg)), timeout=rollout.drain_bound(cfg) + 60)


def undrain_web(cfg: Config) -> Step:
    limit = rollout.unhealthy_timeout(cfg) + cfg.app.healthcheck.start_period
    return _site("undrain the web containers (back on SQLite)", "undrain-web", cfg.project,
                    cfg.app.name, cfg.app.drain_file, f"{rollout.settle(cfg):g}", str(limit),
                    timeout=limit + rollout.settle(cfg) + 60)


def maintenance_off(cfg: Config) -> Step:
    return _site("maintenance off: drain and remove the page", "maint-down",
                    maintenance_name(cfg), f"{rollout.settle(cfg):g}",
                    str(rollout.unhealthy_timeout(cfg)), timeout=rollout.drain_bound(cfg) + 60)


def remove_outranked_page(cfg: Config) -> Step:
    """Remove the cutover's page without draining it: only once the web containers have been
    healthy for `rollout.settle` (the cutover waits for that: `run._until_routed`), when the
    proxy routes to their routers, which outrank the page's (priority 1), so it gets no
    request. An operator's page (`inv maintenance.on`) outranks them and is kept."""
    return _site("maintenance off: remove the page (the app's routers outrank it)",
                 "maint-remove", maintenance_name(cfg), timeout=60)


def target_schema(cfg: Config, target_url: str) -> Step:
    """`app.migrate_command` against the target, in a one-off container of the current
    release (`--schema=existing`: the app's own migrations make the schema the data goes
    into); the URL travels on stdin."""
    return SCRIPTS.step(f"target schema: {' '.join(cfg.app.migrate_command)} on PostgreSQL",
                        "target_schema", f"{cfg.deploy.app_dir}/current/compose.yml",
                        cfg.app.name, *cfg.app.migrate_command,
                        stdin=target_url.encode() + b"\n", timeout=1800)


def marker_path(cfg: Config) -> str:
    return f"{cfg.deploy.app_dir}/{MARKER}"


def remove_marker(cfg: Config) -> Step:
    return Step("remove the database-backend marker", ("rm", "-f", marker_path(cfg)))
