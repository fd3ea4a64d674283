"""The engine and sessions, for SQLite and PostgreSQL alike.

Pool: `DB_POOL_MIN_SIZE` connections are kept open once made (SQLAlchemy's `pool_size`), up
to `DB_POOL_MAX_SIZE` at once (the rest as `max_overflow`), and a request waits at most
`DB_POOL_TIMEOUT` seconds for one. Each uvicorn worker has its own pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings

SQLITE_BUSY_TIMEOUT = 5.0
"""Seconds a SQLite writer waits for another writer's lock before failing."""
PG_CONNECT_TIMEOUT = 5
"""Seconds psycopg waits for a PostgreSQL connection unless the URL says `connect_timeout`."""


def make_engine(url: URL, *, pool_min_size: int = 2, pool_max_size: int = 10,
                pool_timeout: float = 30.0, pooled: bool = True) -> Engine:
    """An engine for `url` (already in SQLAlchemy's form, see `config.database_url`).

    SQLite connections enforce foreign keys, wait `SQLITE_BUSY_TIMEOUT` for locks and use WAL.
    `pooled=False` opens a connection per use (migrations, one-off commands).
    """
    kwargs: dict[str, Any] = {}
    if pooled:
        kwargs.update(pool_size=pool_min_size, max_overflow=pool_max_size - pool_min_size,
                      pool_timeout=pool_timeout, pool_pre_ping=True)
    else:
        kwargs["poolclass"] = sa.NullPool
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT}
    return sa.create_engine(url, **kwargs)


def engine_for(settings: Settings) -> Engine:
    return make_engine(settings.database_url, pool_min_size=settings.pool_min_size,
                       pool_max_size=settings.pool_max_size, pool_timeout=settings.pool_timeout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def sessions(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session per request; rolled back unless the route committed."""
    with factory() as session:
        yield session
