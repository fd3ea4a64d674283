"""Render a release's files from `templates/` with one strict Jinja environment.

Every interpolated string goes through a quoting filter for its target format, so a value
can never break out of the YAML scalar or env-file line it lands in.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2

from fabfile import TEMPLATES_DIR, healthcheck
from fabfile.config import Config
from fabfile.errors import UserError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
SQLITE_MOUNT = "/srv/sqlite"
"""Where the directory of `database.sqlite_path` is bind-mounted in the web containers while
`database.backend` is sqlite (the directory, not the file: SQLite writes its journal or WAL
beside the database)."""


@dataclass(frozen=True)
class RenderedFile:
    """One file of a release; `path` is relative to the release directory."""

    path: str
    content: str
    mode: int = PUBLIC_MODE

    @property
    def secret(self) -> bool:
        return self.mode == SECRET_MODE


def _yaml_quote(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def _compose_quote(value: Any) -> str:
    """A YAML string in which Compose's `$` interpolation sees only literal dollars."""
    return _yaml_quote(str(value).replace("$", "$$"))


def _env_quote(value: Any) -> str:
    text = str(value)
    if "'" in text or "\n" in text or "\r" in text:
        raise UserError("a value for the app's env file contains a single quote or a newline; "
                        "Compose's env_file cannot carry it literally: change the value")
    return f"'{text}'"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - YAML and env files, quoted by the filters below
    )
    env.filters.update(q=_yaml_quote, cq=_compose_quote, envq=_env_quote)
    return env


def render(name: str, context: dict[str, Any]) -> str:
    """Render one template; an undefined variable is an error, never an empty string."""
    return environment().get_template(name).render(**context)


def sqlite_mount(cfg: Config) -> str | None:
    """The web service's bind mount `HOST_DIR:CONTAINER_DIR` while the app runs on SQLite."""
    db = cfg.database
    if db.backend != "sqlite" or db.sqlite_path is None:
        return None
    return f"{posixpath.dirname(db.sqlite_path)}:{SQLITE_MOUNT}"


def database_url(cfg: Config) -> str:
    """The URL the app connects with: its SQLite file as mounted, the managed database, or
    the local service's."""
    db = cfg.database
    if db.backend == "sqlite" and db.sqlite_path is not None:
        return f"sqlite:///{SQLITE_MOUNT}/{posixpath.basename(db.sqlite_path)}"
    if db.url is not None:
        return db.url.reveal()
    assert db.local is not None and db.local.password is not None
    password = quote(db.local.password.reveal(), safe="")
    return f"postgresql://{db.local.user}:{password}@db:5432/{db.local.database}"


def context(cfg: Config) -> dict[str, Any]:
    return {
        "env": cfg.env,
        "project": cfg.project,
        "app": cfg.app,
        "domains": cfg.domains,
        "deploy": cfg.deploy,
        "traefik": cfg.traefik,
        "database": cfg.database,
        "image_ref": cfg.image_ref,
        "health_test": healthcheck.compose_test(cfg),
        "database_url": database_url(cfg),
        "sqlite_mount": sqlite_mount(cfg),
    }


def render_release(cfg: Config) -> tuple[RenderedFile, ...]:
    """All files of a release for this environment, in a stable order."""
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm.render import render_stack_release

        return render_stack_release(cfg)
    ctx = context(cfg)
    files = [
        RenderedFile("compose.yml", render("compose.yml.j2", ctx)),
        RenderedFile("app.env", render("app.env.j2", ctx), SECRET_MODE),
    ]
    if cfg.database.local is not None:
        files.append(RenderedFile("db.env", render("db.env.j2", ctx), SECRET_MODE))
    if cfg.traefik.enabled:
        files.append(RenderedFile("traefik/traefik.yml", render("traefik/traefik.yml.j2", ctx)))
        files.append(RenderedFile("traefik/dynamic/dynamic.yml",
                                  render("traefik/dynamic.yml.j2", ctx)))
    return tuple(files)
