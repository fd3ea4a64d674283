"""The files of a Swarm release: `stack.yml` (web, Traefik), `migrate.yml` (the migration job)
and Traefik's static and dynamic files (deployed as Docker configs), from the same config and
templates as a Compose release.

The app's variables are the rendered `app.env` itself, split: the secret ones (the database
URL, Sentry's DSN, `app.secret_env`) become Docker secrets, the rest the services'
`environment`. No file of a Swarm release holds a secret. Docker secrets and configs are
immutable, so their names carry a digest of their content: a changed value is a new secret,
an unchanged one keeps its name and the service its tasks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fabfile.config import Config
from fabfile.render import RenderedFile, context, render

from .scripts import body
from .topology import SECRET_KEYS, node_label


@dataclass(frozen=True)
class AppVariables:
    """`app.env` split into what the stack may show and what goes into Docker secrets."""

    public: dict[str, str]
    secret: dict[str, str]


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()[:12]


def app_variables(cfg: Config) -> AppVariables:
    """The rendered `app.env` (`KEY='value'` lines) as public and secret variables."""
    public: dict[str, str] = {}
    secret: dict[str, str] = {}
    for line in render("app.env.j2", context(cfg)).splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        (secret if key in SECRET_KEYS or key in cfg.app.secret_env else public)[key] = value
    return AppVariables(public, secret)


def secret_name(cfg: Config, key: str, value: str) -> str:
    """`<project>_<key>_<digest>`: at most 64 characters, new whenever the value changes."""
    return f"{cfg.project[:24]}_{key.lower()[:24]}_{_digest(cfg.project, key, value)}"


def drain_seconds(cfg: Config, *, skip_drain: bool = False) -> float:
    """How long a task keeps serving after SIGTERM: until Traefik's next poll, its throttle
    and a margin have passed (0 with the test-only `skip_drain`)."""
    if skip_drain:
        return 0.0
    return cfg.deploy.swarm.refresh_seconds + cfg.deploy.traefik_throttle + cfg.deploy.drain_margin


def swarm_context(cfg: Config, *, skip_drain: bool = False) -> dict[str, object]:
    variables = app_variables(cfg)
    drain = drain_seconds(cfg, skip_drain=skip_drain)
    ctx = context(cfg)
    static = render("traefik/traefik.yml.j2", ctx)
    dynamic = render("traefik/dynamic.yml.j2", ctx)
    ctx.update({
        "job": False,
        "swarm": cfg.deploy.swarm,
        "drain_seconds": f"{drain:g}",
        "stop_grace_period": f"{drain + cfg.app.stop_grace_period:g}",
        "environment": variables.public,
        "secrets": {k: secret_name(cfg, k, v) for k, v in variables.secret.items()},
        "app_label": node_label(cfg, "app"),
        "edge_label": node_label(cfg, "edge"),
        "configs": {"entrypoint": f"{cfg.project[:24]}_entrypoint_{_digest(body('entrypoint'))}",
                    "static": f"{cfg.project[:24]}_traefik_{_digest(static)}",
                    "dynamic": f"{cfg.project[:24]}_dynamic_{_digest(dynamic)}"},
    })
    return ctx


def render_stack_release(cfg: Config, *, skip_drain: bool = False) -> tuple[RenderedFile, ...]:
    """All files of a Swarm release, in a stable order."""
    ctx = swarm_context(cfg, skip_drain=skip_drain)
    files = [RenderedFile("stack.yml", render("stack.yml.j2", ctx)),
             RenderedFile("entrypoint.sh", body("entrypoint"))]
    if cfg.app.migrate_command:
        files.append(RenderedFile("migrate.yml", render("stack.yml.j2", {**ctx, "job": True})))
    if cfg.traefik.enabled:
        files.append(RenderedFile("traefik/traefik.yml", render("traefik/traefik.yml.j2", ctx)))
        files.append(RenderedFile("traefik/dynamic/dynamic.yml",
                                  render("traefik/dynamic.yml.j2", ctx)))
    return tuple(files)

