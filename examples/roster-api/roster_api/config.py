"""Settings from the environment the deploy tool renders, validated once into `Settings`.

Every problem of one read is gathered into one `ConfigError`, whose message names the
variable, what was expected and what was found (never the value of a secret).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

T = TypeVar("T")

FAULTS = ("api",)
"""`ROSTER_FAULT` values: `api` makes every API route answer 500 while /health passes."""

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class ConfigError(Exception):
    """The environment does not describe a runnable app; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    database_url: URL
    """SQLAlchemy URL: `sqlite:///...` or `postgresql+psycopg://...` (see `database_url`)."""
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_timeout: float = 30.0
    health_db_timeout: float = 1.0
    drain_file: str = "/tmp/drain"  # noqa: S108 - the deploy's drain file inside the container
    app_version: str = "dev"
    app_env: str = ""
    sentry_dsn: str = ""
    fault: str = ""
    debug_routes: bool = False
    port: int = 8000
    web_concurrency: int = 1
    shutdown_timeout: int = 25
    log_level: str = "info"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raise one ConfigError listing all problems."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def get(name: str, parse: Callable[[str], T], default: T, expected: str) -> T:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError:
                problems.append(f"{name}: expected {expected}, got {raw!r}")
                return default

        url = make_url("sqlite://")
        if not env.get("DATABASE_URL", "").strip():
            problems.append("DATABASE_URL: not set; set it to sqlite:////data/roster.db or "
                            "postgresql://USER:PASSWORD@HOST:5432/DB")
        else:
            try:
                url = database_url(env["DATABASE_URL"].strip())
            except ConfigError as exc:
                problems.append(f"DATABASE_URL: {exc}")

        settings = cls(
            database_url=url,
            pool_min_size=get("DB_POOL_MIN_SIZE", _int(0), 2, "an integer >= 0"),
            pool_max_size=get("DB_POOL_MAX_SIZE", _int(1), 10, "an integer >= 1"),
            pool_timeout=get("DB_POOL_TIMEOUT", _seconds, 30.0, "seconds > 0"),
            health_db_timeout=get("HEALTH_DB_TIMEOUT", _seconds, 1.0, "seconds > 0"),
            drain_file=env.get("DRAIN_FILE", "").strip() or cls.drain_file,
            app_version=env.get("APP_VERSION", "").strip() or cls.app_version,
            app_env=env.get("APP_ENV", "").strip(),
            sentry_dsn=env.get("SENTRY_DSN", "").strip(),
            fault=get("ROSTER_FAULT", _choice(FAULTS), "", f"one of {', '.join(FAULTS)}"),
            debug_routes=get("ROSTER_DEBUG_ROUTES", _flag, False, "0 or 1"),
            port=get("PORT", _port, 8000, "a TCP port (1-65535)"),
            web_concurrency=get("WEB_CONCURRENCY", _int(1), 1, "an integer >= 1"),
            shutdown_timeout=get("SHUTDOWN_TIMEOUT", _int(1), 25, "whole seconds >= 1"),
            log_level=get("LOG_LEVEL", _choice(LOG_LEVELS, lower=True), "info",
                          f"one of {', '.join(LOG_LEVELS)}"),
        )
        if settings.pool_max_size < settings.pool_min_size:
            problems.append(f"DB_POOL_MAX_SIZE: expected at least DB_POOL_MIN_SIZE "
                            f"({settings.pool_min_size}), got {settings.pool_max_size}")
        if problems:
            raise ConfigError("invalid environment:\n  " + "\n  ".join(problems))
        return settings


def database_url(raw: str) -> URL:
    """`DATABASE_URL` as SQLAlchemy needs it.

    `postgresql://` and `postgres://` get the psycopg 3 driver (`postgresql+psycopg://`);
    query parameters such as `sslmode=require` are kept. SQLite needs a file path.
    """
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError("expected sqlite:////PATH or postgresql://USER:PASSWORD@HOST/DB, "
                          "got something that is not a URL") from None
    scheme = url.drivername
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if not url.database:
            raise ConfigError("the PostgreSQL URL names no database (…/DBNAME)")
        return url.set(drivername="postgresql+psycopg")
    if scheme in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigError("a SQLite URL needs a file path, e.g. sqlite:////data/roster.db "
                              "(an in-memory database would vanish with the process)")
        return url
    raise ConfigError(f"unsupported scheme {scheme!r}: use sqlite:// or postgresql://")


def _int(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(raw)
        return value
    return parse


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError(raw)
    return value


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(raw)
    return raw == "1"


def _choice(choices: tuple[str, ...], *, lower: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower() if lower else raw
        if value not in choices:
            raise ValueError(raw)
        return value
    return parse
