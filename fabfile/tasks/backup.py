"""`backup` namespace: dumps to S3 with a host cache, listing, restore by date, verification,
retention, bucket setup and the freshness check. Thin adapters over `fabfile.backup`."""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly

if TYPE_CHECKING:
    from fabfile.config import Config

# `fabfile.backup` (boto3 paths, the dump and restore plans, ...) and `fabfile.ui` (rich) are
# imported inside the tasks, so listing tasks or running another namespace does not load them.
ENV_HELP = "environment name: a file environments/<ENV>.yaml (staging, prod, ...)"
# `fabfile.backup.naming.DATE_HELP`, written out: importing it would load all of `fabfile.backup`.
DATE = "which backup: YYYY-MM-DD (UTC), latest, or a backup id such as 20261126T020000Z"


def _config(env: str) -> Config:
    """The environment, needing only the secrets a backup task uses (checked where used)."""
    from fabfile.config import load_config

    return load_config(env, placeholder_secrets=True)


@task(help={"env": ENV_HELP, "label": "free text stored in the manifest (e.g. before-migration)"})
@friendly
def create(c: Context, env: str, label: str = "") -> None:
    """Dump the database on the host, upload it to S3, write its manifest last."""
    from fabfile.backup import dump

    dump.create_or_alert(_config(env), label=label)


@task(name="list", help={"env": ENV_HELP, "json": "print JSON instead of a table"})
@friendly
def list_(c: Context, env: str, json: bool = False) -> None:
    """List backups, newest first: size, where the copies are, verified or not."""
    from fabfile import ui
    from fabfile.backup import listing

    found, warning = listing.rows(_config(env))
    if json:
        print(_json.dumps([dict(zip(["date", "time", "id", "size", "where", "status", "verified",
                                     "label"], row.cells(), strict=True)) for row in found],
                          indent=2))
        return
    if warning:
        ui.warn(warning)
    ui.console.print(ui.table(f"backups of {env}", listing.COLUMNS,
                              [row.cells() for row in found]))
    complete = sum(1 for row in found if row.entry.complete and not row.problem)
    ui.console.print(f"{complete} complete, {len(found) - complete} incomplete or damaged")


@task(help={
    "env": ENV_HELP,
    "date": DATE,
    "target_url": "restore into this database instead of the environment's own "
                  "(postgresql://user:password@host:5432/db, reachable from the host); it "
                  "must hold no objects, unless --replace",
    "replace": "with --target-url: drop what that database holds, then restore",
    "yes": "do not ask before replacing the live database or a --replace target (CI)",
})
@friendly
def restore(c: Context, env: str, date: str = "latest", target_url: str = "",
            replace: bool = False, yes: bool = False) -> None:
    """Restore a backup exactly, over the live database (behind a maintenance page) or elsewhere."""
    from fabfile import ui
    from fabfile.backup import restore as restoring
    from fabfile.backup.naming import parse_date_spec

    spec = parse_date_spec(date)
    done = restoring.restore(_config(env), spec, target_url=target_url or None,
                             replace=replace, assume_yes=yes)
    m = done.manifest
    ui.ok(f"restored backup {m.backup_id} into {done.target} from the "
          f"{'host cache' if done.source == 'cache' else 'S3 copy'} in {done.seconds:.1f}s"
          + (f"; the site was in maintenance for {done.window:.1f}s" if done.window else "")
          + (f"; what it held before is backup {done.pre_restore} (pre-restore)"
             if done.pre_restore else ""))


@task(help={"env": ENV_HELP, "date": DATE})
@friendly
def verify(c: Context, env: str, date: str = "latest") -> None:
    """Restore a backup into a scratch database and compare row counts with its manifest."""
    from fabfile import ui
    from fabfile.backup import restore as restoring
    from fabfile.backup.naming import parse_date_spec

    result = restoring.verify(_config(env), parse_date_spec(date))
    rows = sum(result.restored_tables.values())
    ui.ok(f"backup {result.backup_id} verified: {len(result.restored_tables)} tables, "
          f"{rows:,} rows, as in its manifest ({result.seconds:.1f}s); scratch database dropped")


@task(help={"env": ENV_HELP + "; the limit is its checks.max_backup_age_hours (default 26), "
                              "and its Slack webhook is alerted when the check fails"})
@friendly
def check(c: Context, env: str) -> None:
    """Fail and alert Slack when the newest complete backup is older than the configured limit."""
    from fabfile.checks import doctor as checks
    from fabfile.tasks.doctor import report

    cfg = _config(env)
    if cfg.backup is None:
        raise UserError(f"environment {env} has no backup section: nothing to check")
    results = checks.run(cfg, selected=("backup-age",))
    if results[0].status == "skip":
        raise UserError(f"the backup age cannot be checked: {results[0].detail}")
    report(cfg, results, command=f"inv backup.check --env={env}", json=False)


@task(help={"env": ENV_HELP, "dry_run": "show what would be deleted, delete nothing"})
@friendly
def prune(c: Context, env: str, dry_run: bool = False) -> None:
    """Apply retention to S3 and the host cache; never deletes the newest complete backup."""
    from fabfile import ui
    from fabfile.backup import prune as pruning

    result = pruning.prune(_config(env), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    rows = [[e.backup_id, e.status, "delete"] for e in result.decision.delete]
    rows += [[backup_id, "", f"keep: {why}"] for backup_id, why in result.decision.keep.items()]
    ui.console.print(ui.table(f"retention for {env}{' (dry run)' if dry_run else ''}",
                              ["id", "status", "decision"], sorted(rows, reverse=True)))
    if result.cache_warning:
        ui.warn(result.cache_warning)
    ui.ok(f"{verb} {len(result.decision.delete)} backup(s) ({len(result.deleted_keys)} "
          f"objects), {len(result.aborted_uploads)} unfinished upload(s) and "
          f"{len(result.evicted)} cached dump(s) on the host")


@task(help={"env": ENV_HELP})
@friendly
def setup(c: Context, env: str) -> None:
    """Merge the bucket lifecycle rule, check encryption, create the host cache (0700)."""
    from fabfile import ui
    from fabfile.backup import setup as setting

    report = setting.setup(_config(env))
    for warning in report.warnings:
        ui.warn(warning)
    ui.console.print(ui.table(f"backup setup of {env}", ["what", "result"],
                              [list(line) for line in report.lines]))


namespace = Collection("backup")
for backup_task in (create, list_, restore, verify, prune, setup, check):
    namespace.add_task(backup_task)
