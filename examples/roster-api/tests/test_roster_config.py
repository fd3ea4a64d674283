"""Settings from the environment: DATABASE_URL's forms, defaults, and every mistake at once."""

from __future__ import annotations

import pytest

from roster_api.config import ConfigError, Settings, database_url


@pytest.mark.parametrize(("raw", "expected"), [
    ("postgresql://app:s3cret@db:5432/roster?sslmode=require",
     "postgresql+psycopg://app:s3cret@db:5432/roster?sslmode=require"),
    ("postgres://app@db/roster", "postgresql+psycopg://app@db/roster"),
    ("postgresql+psycopg://app@db/roster?sslmode=verify-full&connect_timeout=3",
     "postgresql+psycopg://app@db/roster?connect_timeout=3&sslmode=verify-full"),
    ("sqlite:////data/roster.db", "sqlite:////data/roster.db"),
])
def test_database_url_gets_the_psycopg3_driver_and_keeps_parameters(
        raw: str, expected: str) -> None:
    assert database_url(raw).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("mysql://app@db/roster", "unsupported scheme 'mysql'"),
    ("sqlite://", "needs a file path"),
    ("sqlite:///:memory:", "needs a file path"),
    ("postgresql://app@db", "names no database"),
    ("roster.db", "not a URL"),
])
def test_unusable_database_urls_say_why(raw: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        database_url(raw)


def test_defaults_from_a_minimal_environment() -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite:////data/roster.db"})
    assert settings.is_sqlite
    assert (settings.pool_min_size, settings.pool_max_size, settings.pool_timeout) == (2, 10, 30)
    assert (settings.port, settings.web_concurrency, settings.shutdown_timeout) == (8000, 1, 25)
    assert settings.shutdown_timeout < 30, "must end before the deploy's 30 s stop grace"
    assert (settings.drain_file, settings.health_db_timeout) == ("/tmp/drain", 1.0)
    assert (settings.sentry_dsn, settings.fault, settings.debug_routes) == ("", "", False)


def test_the_deploy_tools_variables_are_read() -> None:
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://app:pw@db/roster", "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "5", "DB_POOL_TIMEOUT": "2.5", "APP_VERSION": "v7",
        "SENTRY_DSN": "https://key@sentry.example/1", "WEB_CONCURRENCY": "3", "PORT": "9000",
        "HEALTH_DB_TIMEOUT": "0.5", "DRAIN_FILE": "/run/drain", "LOG_LEVEL": "WARNING",
    })
    assert not settings.is_sqlite
    assert settings.database_url.drivername == "postgresql+psycopg"
    assert (settings.pool_min_size, settings.pool_max_size, settings.pool_timeout) == (1, 5, 2.5)
    assert (settings.app_version, settings.web_concurrency, settings.port) == ("v7", 3, 9000)
    assert settings.sentry_dsn == "https://key@sentry.example/1"
    assert (settings.health_db_timeout, settings.drain_file) == (0.5, "/run/drain")
    assert settings.log_level == "warning"


def test_every_mistake_is_reported_at_once_without_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DB_POOL_MIN_SIZE": "-1", "DB_POOL_TIMEOUT": "soon",
                           "ROSTER_FAULT": "everything", "PORT": "70000",
                           "WEB_CONCURRENCY": "0", "SENTRY_DSN": "https://secret@x/1"})
    message = str(caught.value)
    for name in ("DATABASE_URL: not set", "DB_POOL_MIN_SIZE", "DB_POOL_TIMEOUT",
                 "ROSTER_FAULT", "PORT", "WEB_CONCURRENCY"):
        assert name in message
    assert "secret" not in message


def test_pool_max_below_min_is_refused() -> None:
    with pytest.raises(ConfigError, match="DB_POOL_MAX_SIZE: expected at least DB_POOL_MIN"):
        Settings.from_env({"DATABASE_URL": "sqlite:////d/r.db", "DB_POOL_MIN_SIZE": "5",
                           "DB_POOL_MAX_SIZE": "2"})
