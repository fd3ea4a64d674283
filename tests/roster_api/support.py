"""Shared by the project-side tests of the roster app (examples/roster-api)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.backup.roster import bench_sqlite
from tests.support.images import ROSTER_DIR

ROSTER_TABLES = ("organizations", "people", "teams", "team_members", "events", "assignments",
                 "availability_exceptions", "audit_logs", "attachments")
SCALE = 0.01
"""The bench roster's size for these tests: ~3,100 rows over the nine tables."""


def roster_copy(dest: Path) -> Path:
    """A private copy of the generated bench roster.db (no alembic_version: made before
    Alembic), at `SCALE`."""
    path = dest / "roster.db"
    shutil.copyfile(bench_sqlite(SCALE), path)
    return path


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The app's migrate command as the deploy runs it: `alembic ARGS` in the app's directory
    with DATABASE_URL in the environment."""
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROSTER_DIR, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608
                for t in ROSTER_TABLES}
