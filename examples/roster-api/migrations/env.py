"""Alembic environment: the database is DATABASE_URL (or the URL a caller passed in
`config.attributes`), turned into SQLAlchemy's form the way the app does it."""

from __future__ import annotations

import os

from alembic import context
from alembic.util import CommandError
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from roster_api.config import ConfigError, database_url
from roster_api.db import make_engine
from roster_api.models import Base
from roster_api.revisions import URL_ATTRIBUTE

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    from logging.config import fileConfig

    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> URL:
    raw = config.attributes.get(URL_ATTRIBUTE) or os.environ.get("DATABASE_URL", "").strip()
    if not raw:
        raise CommandError("DATABASE_URL is not set: set it to sqlite:////data/roster.db or "
                           "postgresql://USER:PASSWORD@HOST:5432/DB")
    try:
        return database_url(raw)
    except ConfigError as exc:
        raise CommandError(f"DATABASE_URL: {exc}") from None


if context.is_offline_mode():
    raise CommandError("offline mode (--sql) is not supported: revision 0001 looks at the "
                       "database to adopt a roster.db made before Alembic")

url = _url()
engine = make_engine(url, pooled=False)
try:
    try:
        connection = engine.connect()
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise CommandError(f"cannot connect to {url.render_as_string(hide_password=True)}: "
                           f"{reason}") from None
    with connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
