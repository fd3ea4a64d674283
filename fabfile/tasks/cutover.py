"""`db` tasks that work on an environment's host: `db.migrate-from-sqlite --env=ENV` and
`db.cutover`. `tasks.py` adds them to the `db` collection of `fabfile/tasks/db.py`.

`migrate_from_sqlite` is the `db` module's task of the same name with one more option,
`--env`: its signature and help are the original's plus `env` (read when this module is
imported), so every option the original gains keeps working here unchanged. Without
`--env` it is the original; with it, the `--sqlite` file is a snapshot of the host's live
file and `--target-url` defaults to the environment's `database.url`. The engine runs where
the task runs: a managed database must admit this machine's (or CI's) address.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

from invoke.context import Context
from invoke.tasks import Task, task

from fabfile.errors import UserError
from fabfile.tasks import db as db_tasks
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

# `fabfile.cutover` (which loads the migration engine), `fabfile.remote` (paramiko) and
# `fabfile.ui` (rich) are imported inside the tasks, only when they run.
_ORIGINAL: Task[Any] = db_tasks.migrate_from_sqlite
ENV_MIGRATE_HELP = ("take the SQLite file from this environment's host (a consistent online "
                    "backup made there) and migrate into its database.url (unless "
                    "--target-url); instead of --sqlite")


@friendly
def _migrate_from_sqlite(c: Context, *args: Any, env: str = "", **kwargs: Any) -> None:
    if not env:
        _ORIGINAL.body(c, *args, **kwargs)
        return
    if args or kwargs.get("sqlite"):
        raise UserError("--env takes the SQLite file from the environment's host: leave out "
                        "--sqlite")
    from fabfile import ui
    from fabfile.config import load_config
    from fabfile.cutover import snapshot
    from fabfile.remote import connect

    cfg = load_config(env)
    snapshot.require_sqlite(cfg)
    if not kwargs.get("target_url"):
        if cfg.database.url is None:
            raise UserError(f"environments/{env}.yaml sets no database.url to migrate into: "
                            "pass --target-url")
        kwargs["target_url"] = cfg.database.url.reveal()
    transport = connect(cfg.hosts[0])
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-snapshot-") as tmp:
            snap = snapshot.take(cfg, transport, Path(tmp))
            transport.close()
            ui.step(f"migrating the snapshot of {transport.host.label}:"
                    f"{cfg.database.sqlite_path}")
            _ORIGINAL.body(c, **{**kwargs, "sqlite": str(snap.path)})
    finally:
        transport.close()


def _with_env(signature: inspect.Signature) -> inspect.Signature:
    params = list(signature.parameters.values())
    env = inspect.Parameter("env", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="",
                            annotation="str")
    return signature.replace(parameters=[*params, env])


_migrate_from_sqlite.__signature__ = _with_env(  # type: ignore[attr-defined]
    inspect.signature(_ORIGINAL.body))
_migrate_from_sqlite.__doc__ = _ORIGINAL.body.__doc__
migrate_from_sqlite = task(help={**_ORIGINAL.help, "env": ENV_MIGRATE_HELP})(
    _migrate_from_sqlite)


def _jobs(value: str) -> int:
    if not value:
        return os.cpu_count() or 2
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise UserError(f"--jobs={value!r}: expected a whole number from 1 to 64")
    return int(value)


@task(help={
    "env": ENV_HELP,
    "yes": "go ahead without asking (CI); the site shows the maintenance page meanwhile",
    "jobs": "parallel migration workers (default: number of CPUs)",
    "lock_wait": "when a deploy holds the host's lock, wait up to SECONDS for it (default 0)",
    "drop_existing": "replace tables of the same names in the target (a re-run after a "
                     "cutover that failed after migrating)",
    "schema": "infer: create the tables from the SQLite schema (default); existing: run "
              "app.migrate_command against the target first (the app's own migrations, e.g. "
              "Alembic, make the schema) and copy into it by column name",
    "report": "write the maintenance window's phases (seconds) to this JSON file",
})
@friendly
def cutover(c: Context, env: str, yes: bool = False, jobs: str = "", lock_wait: int = 0,
            drop_existing: bool = False, schema: str = "infer", report: str = "") -> None:
    """Move the running app from SQLite to PostgreSQL behind a maintenance page."""
    from fabfile.config import load_config
    from fabfile.cutover import run

    if lock_wait < 0:
        raise UserError("--lock-wait: expected a number of seconds, 0 or more")
    if schema not in ("infer", "existing"):
        raise UserError(f"--schema={schema!r}: expected infer or existing")
    run.cutover(load_config(env), run.CutoverOptions(
        yes=yes, jobs=_jobs(jobs), lock_wait=float(lock_wait), drop_existing=drop_existing,
        schema=schema,  # type: ignore[arg-type]
        report=Path(report) if report else None))
