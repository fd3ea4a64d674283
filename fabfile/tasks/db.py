"""`db` namespace: move the app's SQLite database to PostgreSQL and check the result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly

if TYPE_CHECKING:
    from fabfile.migrate.report import MigrationReport

# `fabfile.migrate.engine` (psycopg, multiprocessing, the planner) is imported inside the
# tasks, with the option values it accepts (SCHEMA_MODES, ...): the help texts below spell
# them out.
SQLITE_HELP = "path of the SQLite database file (opened read-only, never modified)"
TARGET_HELP = "PostgreSQL URL, e.g. postgresql://user:pass@host:5432/dbname"
JOBS_HELP = "parallel workers (default: number of CPUs)"
REPORT_HELP = "also write the full report (tables, checksums, bad rows, notes) to FILE.json"
UTC_HELP = ("DATETIME columns become timestamptz; naive values are read as UTC and values with "
            "an offset are converted (default: timestamp without time zone, naive stays naive)")


def _jobs(value: str) -> int:
    if not value:
        return os.cpu_count() or 2
    try:
        n = int(value)
    except ValueError:
        raise UserError(f"--jobs={value!r}: expected a whole number, e.g. --jobs=4") from None
    if not 1 <= n <= 64:
        raise UserError(f"--jobs={n}: expected 1 to 64")
    return n


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UserError(f"--{option}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _required(option: str, value: str) -> str:
    if not value.strip():
        raise UserError(f"--{option} is required")
    return value.strip()


def _report_path(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if path.parent and not path.parent.is_dir():
        raise UserError(f"--report={value}: directory {path.parent} does not exist")
    return path


def _write(report: MigrationReport, path: Path | None) -> None:
    if path is not None:
        report.write(path)


@task(help={
    "sqlite": SQLITE_HELP,
    "target_url": TARGET_HELP,
    "dry_run": "preflight and print the schema it would create; write nothing",
    "jobs": JOBS_HELP,
    "schema": "infer: create tables from the SQLite schema; existing: copy into the tables "
              "the app's migrations made (by column name)",
    "drop_existing": "replace tables (and views/indexes) of the same names in the target",
    "verify": "checksums: compare every row's content (default); counts: row counts only",
    "report": REPORT_HELP,
    "on_bad_rows": "fail: stop before writing and list bad rows (default); quarantine: put "
                   "them in _quarantine with the reason and migrate the rest",
    "utc_timestamps": UTC_HELP,
})
@friendly
def migrate_from_sqlite(c: Context, sqlite: str = "", target_url: str = "", dry_run: bool = False,
                        jobs: str = "", schema: str = "infer", drop_existing: bool = False,
                        verify: str = "checksums", report: str = "", on_bad_rows: str = "fail",
                        utc_timestamps: bool = False) -> None:
    """Migrate a SQLite database into PostgreSQL: preflight, schema, parallel COPY, verify."""
    from fabfile.migrate.engine import (
        BAD_ROW_MODES,
        SCHEMA_MODES,
        VERIFY_MODES,
        MigrateOptions,
        MigrationFailed,
    )
    from fabfile.migrate.engine import migrate as run_migration

    path = Path(_required("sqlite", sqlite))
    url = _required("target-url", target_url)
    options = MigrateOptions(
        jobs=_jobs(jobs), schema=_choice("schema", schema, SCHEMA_MODES),
        drop_existing=drop_existing, verify=_choice("verify", verify, VERIFY_MODES),
        on_bad_rows=_choice("on-bad-rows", on_bad_rows, BAD_ROW_MODES),
        utc_timestamps=utc_timestamps, dry_run=dry_run)
    out = _report_path(report)
    try:
        result = run_migration(path, url, options)
    except MigrationFailed as exc:
        _write(exc.report, out)
        raise
    _write(result, out)


@task(help={
    "sqlite": SQLITE_HELP,
    "target_url": TARGET_HELP,
    "mode": "checksums (default) or counts",
    "jobs": JOBS_HELP,
    "report": REPORT_HELP,
    "utc_timestamps": "the target was migrated with --utc-timestamps",
})
@friendly
def verify(c: Context, sqlite: str = "", target_url: str = "", mode: str = "checksums",
           jobs: str = "", report: str = "", utc_timestamps: bool = False) -> None:
    """Compare a PostgreSQL database with its SQLite source, table by table; change nothing."""
    from fabfile.migrate.engine import VERIFY_MODES, MigrationFailed
    from fabfile.migrate.engine import verify as run_verify

    path = Path(_required("sqlite", sqlite))
    url = _required("target-url", target_url)
    out = _report_path(report)
    try:
        result = run_verify(path, url, jobs=_jobs(jobs), mode=_choice("mode", mode, VERIFY_MODES),
                            utc_timestamps=utc_timestamps)
    except MigrationFailed as exc:
        _write(exc.report, out)
        raise
    _write(result, out)


namespace = Collection("db")
namespace.add_task(migrate_from_sqlite, name="migrate-from-sqlite")
namespace.add_task(verify, name="verify")
