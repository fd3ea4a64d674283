"""Root tasks of the main job: setup, deploy, plan, rollback, status, logs."""

from __future__ import annotations

import dataclasses
import json as _json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

if TYPE_CHECKING:
    from fabfile.config import Config

# `fabfile.deploy`, `fabfile.remote` (paramiko), `fabfile.render` (jinja2), `fabfile.ui` (rich)
# and the configuration loader are imported inside the tasks, only when they run.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
YES_HELP = "go ahead without asking (CI); environments with deploy.confirm ask otherwise"
LOCK_WAIT_HELP = "when another deploy holds a host's lock, wait up to SECONDS for it (default 0)"


def with_version(cfg: Config, version: str) -> Config:
    """The config with `app.tag` replaced by `--version`, validated like the YAML value."""
    if not version:
        return cfg
    from fabfile.config import checks as config_checks

    problem = config_checks.tag(version)
    if problem:
        raise UserError(f"--version={version!r}: expected {problem}")
    return dataclasses.replace(cfg, app=dataclasses.replace(cfg.app, tag=version))


def _clean(text: str) -> str:
    """Remote log text for this terminal: terminal escapes stripped, secrets redacted."""
    from fabfile.config.secrets import redact

    return redact(_ESCAPES.sub("", text))


def lock_wait_seconds(value: int) -> float:
    if value < 0:
        raise UserError("--lock-wait: expected a number of seconds, 0 or more")
    return float(value)


@task(help={
    "env": ENV_HELP,
    "install": "first install Docker Engine and the Compose v2 plugin from the host's "
               "distribution packages (Debian, Ubuntu; as root or with passwordless sudo) and "
               "add the SSH user to the docker group",
})
@friendly
def setup(c: Context, env: str, install: bool = False) -> None:
    """Prepare hosts: Docker (or --install it), dirs, network, the watcher."""
    from fabfile.config import load_config

    cfg = load_config(env, placeholder_secrets=True)
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm import setup as swarm_setup

        swarm_setup.setup(load_config(env), install=install)
        return
    from fabfile.deploy import bootstrap

    bootstrap.setup(cfg, install=install)


@task(help={
    "env": ENV_HELP,
    "version": "image tag to deploy (default: app.tag from the environment's YAML)",
    "yes": YES_HELP,
    "dry_run": "print the plan and change nothing (no lock, no upload)",
    "lock_wait": LOCK_WAIT_HELP,
    "skip_migrations": "do not run app.migrate_command before rolling the web service",
    "during_maintenance": "deploy while `inv maintenance.on` holds the site behind its page "
                          "(it stays there; the smoke test asks the containers directly)",
})
@friendly
def deploy(c: Context, env: str, version: str = "", yes: bool = False, dry_run: bool = False,
           lock_wait: int = 0, skip_migrations: bool = False,
           during_maintenance: bool = False) -> None:
    """Deploy a version with zero downtime (or roll back)."""
    from fabfile.config import load_config
    from fabfile.deploy import execute

    cfg = with_version(load_config(env), version)
    opts = execute.DeployOptions(
        version=version or None, yes=yes, dry_run=dry_run, lock_wait=lock_wait_seconds(lock_wait),
        skip_migrations=skip_migrations, during_maintenance=during_maintenance)
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm import execute as swarm_execute

        swarm_execute.deploy(cfg, opts)
        return
    execute.deploy(cfg, opts)


@task(help={
    "env": ENV_HELP,
    "version": "image tag to plan for (default: app.tag from the environment's YAML)",
    "json": "print the plan as JSON (steps with argv) instead of text",
    "skip_migrations": "plan without the migration step",
})
@friendly
def plan(c: Context, env: str, version: str = "", json: bool = False,
         skip_migrations: bool = False) -> None:
    """Show what deploy would change (diffs and steps)."""
    from fabfile import ui
    from fabfile.config import load_config
    from fabfile.config.secrets import redact
    from fabfile.deploy import execute, release
    from fabfile.deploy.plan import Options, as_data, images, plan_deploy
    from fabfile.deploy.show import lock_line, show_plan
    from fabfile.remote import connect
    from fabfile.render import render_release

    cfg = with_version(load_config(env), version)
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm import execute as swarm_execute
        from fabfile.swarm.plan import as_data as swarm_data

        plans = swarm_execute.plans(cfg, skip_migrations=skip_migrations)
        to_data, show = swarm_data, swarm_execute.show
    else:
        files = render_release(cfg)
        runs = [execute.HostRun(connect(h)) for h in cfg.hosts]
        try:
            execute.gather(cfg, runs, take_lock=False,
                           image_refs=sorted(set(images(files).values())))
            now = datetime.now(UTC)
            plans = []
            for run in runs:
                assert run.facts is not None
                rid = release.new_id(now, cfg.app.tag, run.facts.release_ids)
                plans.append((run, plan_deploy(cfg, run.facts, files, run.host, Options(
                    release_id=rid, token="", skip_migrations=skip_migrations))))
        finally:
            for run in runs:
                run.transport.close()
        to_data, show = as_data, show_plan
    if json:
        print(redact(_json.dumps([to_data(p) for _, p in plans], indent=2)))
        return
    for run, p in plans:
        show(p, run.facts, cfg, diffs=True)
        if run.facts is not None and run.facts.lock == "held":
            ui.warn(f"{run.host}: lock {lock_line(cfg, run.facts)}")


@task(help={
    "env": ENV_HELP,
    "to": "release id (or its version, e.g. v1) to go back to (default: the previous one)",
    "yes": YES_HELP,
    "dry_run": "print the plan and change nothing",
    "lock_wait": LOCK_WAIT_HELP,
})
@friendly
def rollback(c: Context, env: str, to: str = "", yes: bool = False, dry_run: bool = False,
             lock_wait: int = 0) -> None:
    """Roll back to the previous or a named release."""
    from fabfile.config import load_config
    from fabfile.deploy import execute

    cfg = load_config(env)
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm import execute as swarm_execute

        swarm_execute.rollback(cfg, to=to or None, yes=yes, dry_run=dry_run,
                               lock_wait=lock_wait_seconds(lock_wait))
        return
    execute.rollback(cfg, to=to or None, yes=yes, dry_run=dry_run,
                     lock_wait=lock_wait_seconds(lock_wait))


@task(help={"env": ENV_HELP, "json": "print the hosts' facts as JSON"})
@friendly
def status(c: Context, env: str, json: bool = False) -> None:
    """Show releases, containers, restarts, lock, audit."""
    from fabfile.config import load_config
    from fabfile.config.secrets import redact
    from fabfile.deploy import execute
    from fabfile.deploy.show import show_status

    cfg = load_config(env)
    runs = execute.read_facts(cfg)
    for run in runs:
        run.transport.close()
    if json:
        data = [{"host": r.host, **dataclasses.asdict(r.facts)} for r in runs if r.facts]
        for item, run in zip(data, runs, strict=True):
            item.pop("contents", None)
            item.pop("env_lines", None)
            swarm = getattr(run, "swarm", None)
            if swarm is not None:
                item["swarm"] = dataclasses.asdict(swarm)
        print(redact(_json.dumps(data, indent=2, default=_jsonable)))
        return
    for run in runs:
        assert run.facts is not None
        swarm = getattr(run, "swarm", None)
        if swarm is not None:
            from fabfile.swarm.show import show_status as show_swarm

            show_swarm(cfg, run.host, run.facts, swarm)
        else:
            show_status(cfg, run.host, run.facts)
    _warn_on_backup_age(cfg)


def _jsonable(value: object) -> object:
    return sorted(value) if isinstance(value, set | frozenset) else str(value)


def backup_age_line(age: timedelta | None, stale_after: timedelta) -> tuple[bool, str]:
    """(is it a warning, the text) for the newest complete backup's age."""
    if age is None:
        return True, "backups: no complete backup yet (run inv backup.create)"
    hours = age.total_seconds() / 3600
    if age > stale_after:
        return True, (f"backups: the newest complete backup is {hours:.0f} h old (over "
                      f"{stale_after.total_seconds() / 3600:.0f} h): check the backup schedule")
    return False, f"backups: newest complete {hours:.1f} h ago"


def _warn_on_backup_age(cfg: Config) -> None:
    """Status line for backups: a warning when the newest complete one is over 26 h old."""
    if cfg.backup is None:
        return
    from fabfile import ui
    from fabfile.backup import STALE_AFTER, newest_complete_age

    try:
        age = newest_complete_age(cfg)
    except UserError as exc:
        ui.warn(f"backups: cannot read the bucket ({exc.message})")
        return
    warning, text = backup_age_line(age, STALE_AFTER)
    if warning:
        ui.warn(text)
    else:
        ui.console.print(text)


@task(help={
    "env": ENV_HELP,
    "service": "only this service (default: all of them; on a swarm with --follow: the web "
               "service)",
    "since": "only lines since this time: 10m, 2h or an RFC 3339 date",
    "tail": "lines per container to show (default 200; 0 for all)",
    "follow": "keep streaming new lines until Ctrl-C (one host only)",
    "host": "only this host (its address), when the environment has several",
})
@friendly
def logs(c: Context, env: str, service: str = "", since: str = "", tail: int = 200,
         follow: bool = False, host: str = "") -> None:
    """Show the stack's container logs (secrets redacted)."""
    from fabfile import ui
    from fabfile.config import checks as config_checks
    from fabfile.config import load_config
    from fabfile.config.secrets import redact
    from fabfile.remote import Step, connect

    cfg = load_config(env)
    if service and config_checks.name(service) is not None:
        raise UserError(f"--service={service!r}: expected a service name")
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm.logs import logs as swarm_logs

        swarm_logs(cfg, service=service, since=since, tail=tail, follow=follow, host=host,
                   clean=_clean)
        return
    hosts = [h for h in cfg.hosts if not host or h.address == host]
    if not hosts:
        raise UserError(f"--host={host}: not a host of {env} "
                        f"({', '.join(h.address for h in cfg.hosts)})")
    if follow and len(hosts) > 1:
        raise UserError("--follow streams one host: pick it with --host=ADDRESS")
    argv = ["docker", "compose", "-f", f"{cfg.deploy.app_dir}/current/compose.yml", "logs",
            "--no-color", "--tail", str(tail) if tail > 0 else "all"]
    if since:
        argv += ["--since", since]
    if follow:
        argv.append("--follow")
    if service:
        argv.append(service)
    for h in hosts:
        t = connect(h)
        try:
            if follow:
                t.stream(argv, sink=lambda text: print(_clean(text), end="", flush=True))
                continue
            result = t.probe(Step(f"logs on {h.label}", tuple(argv), timeout=120))
            if not result.ok:
                err = result.stderr.strip()
                if "no such file" in err.lower() or "not found" in err.lower():
                    raise UserError(f"nothing is deployed on {h.label} yet (no current release)")
                raise UserError(f"logs on {h.label} failed: {redact(err[-400:])}")
            if len(hosts) > 1:
                ui.console.rule(h.label)
            print(_clean(result.stdout), end="")
        finally:
            t.close()
