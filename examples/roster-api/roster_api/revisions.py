"""Where the Alembic migrations are, and which revision this code expects."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

APP_ROOT = Path(__file__).resolve().parents[1]
"""The directory holding `alembic.ini` (the image's WORKDIR)."""
URL_ATTRIBUTE = "database_url"
"""`Config.attributes` key through which a caller hands `migrations/env.py` its database URL."""


def alembic_config(database_url: str | None = None) -> Config:
    """The app's Alembic config; with `database_url`, that database instead of DATABASE_URL."""
    config = Config(str(APP_ROOT / "alembic.ini"))
    if database_url is not None:
        config.attributes[URL_ATTRIBUTE] = database_url
    return config


@cache
def expected_head() -> str:
    """The newest revision shipped with this code: what `alembic upgrade head` leads to."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions under {APP_ROOT / 'migrations'}")
    return head
