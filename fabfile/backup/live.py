"""`backup.restore` over the live database: the site waits behind the maintenance page
while its database is replaced, so no request meets a half-restored database and no write
made meanwhile is lost.

1. Preflight, with the site up: the dump reaches the first host's cache and checks out,
   and the plan of the exact restore shows the database user may do it (else it stops with
   the fix, nothing changed). The plan is shown; the operator confirms.
2. Take the host lock on every host: no deploy, rollback or other restore meanwhile.
3. Where a release runs: the maintenance page comes up (the cutover's mechanism,
   `fabfile.cutover.steps`), then the web containers are drained (the proxy sends every
   request to the page) and stopped, so nothing holds or writes the database any more.
4. The pre-restore backup: what the database holds now, labelled `pre-restore`.
5. The exact restore.
6. The current release's web containers start again; the run waits until they are healthy.
7. The page comes down (drained first), the smoke test runs, the lock is released and the
   run written to the audit log.

A failure before the restore changed the database puts the site back up. A failure after
that leaves the page up, and says what the database holds and the command that brings the
pre-restore backup back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from fabfile import ui
from fabfile.cutover import steps
from fabfile.cutover.site import run_site_step
from fabfile.deploy import execute, facts, rollout, smoke
from fabfile.deploy.execute import HostRun, finish, shielded, sigterm_as_interrupt
from fabfile.deploy.lock import Holder, describe, held_error, new_holder
from fabfile.deploy.plan import compose_path
from fabfile.errors import UserError
from fabfile.remote import connect

from . import exact, plan
from .catalog import Entry
from .dump import alert, create_or_alert
from .env import BackupEnv
from .manifest import Manifest
from .restore import Restored, RestoreFailed, check, run_restore
from .restore import describe as describe_backup

Database = Literal["untouched", "partly", "unknown", "restored"]


@dataclass
class _Run:
    """What this run did so far: what to undo, and what to say when it fails."""

    env: BackupEnv
    manifest: Manifest
    holder: Holder
    hosts: list[HostRun]
    pre: str = ""
    db: Database = "untouched"
    paged: list[HostRun] = field(default_factory=list)
    stopped: list[HostRun] = field(default_factory=list)
    page_up_at: float | None = None

    @property
    def cmd(self) -> str:
        return f"inv backup.restore --env={self.env.cfg.env}"


def restore_live(env: BackupEnv, entry: Entry, manifest: Manifest, *,
                 assume_yes: bool) -> Restored:
    """Steps 1-7 above; raises UserError saying what the database holds when it fails."""
    cfg, target = env.cfg, env.target
    hosts = [HostRun(connect(h)) for h in cfg.hosts]
    state = _Run(env, manifest, new_holder("backup.restore", manifest.backup_id), hosts)
    started = time.monotonic()
    try:
        planned = check(env, entry, manifest, target, mode="exact", transport=hosts[0].transport)
        ui.warn(f"this replaces the live database {target.label} of {cfg.env} with "
                f"{describe_backup(manifest)}, behind the maintenance page, after a "
                "pre-restore backup")
        if planned.drops:
            ui.warn(f"the restore drops what the backup does not hold: "
                    f"{exact.named(planned.drops)}")
        if not ui.confirm("Restore over the live database?", assume_yes=assume_yes):
            raise UserError("restore cancelled: nothing was changed (pass --yes to skip the "
                            "question, e.g. in CI)")
        with sigterm_as_interrupt():
            try:
                restored = _run(state, entry)
            except (UserError, KeyboardInterrupt) as exc:
                raise _failed(state, exc, started) from None
        _finish(state, "success", "restored", started)
    finally:
        for run in hosts:
            run.transport.close()
    restored.pre_restore = state.pre
    return restored


def _run(state: _Run, entry: Entry) -> Restored:
    env, cfg = state.env, state.env.cfg
    _lock(state)
    for run in state.hosts:
        assert run.facts is not None
        if run.facts.current is None:
            continue
        state.paged.append(run)
        run_site_step(run.transport, steps.maintenance_on(cfg))
        state.stopped.append(run)
        if state.page_up_at is None:
            state.page_up_at = time.monotonic()
        run_site_step(run.transport, steps.stop_web(cfg))
    ui.step("pre-restore backup: what the database holds now")
    first = state.hosts[0]
    state.pre = create_or_alert(cfg, label="pre-restore", protect=state.manifest.backup_id,
                                transport=first.transport).manifest.backup_id
    ui.step(f"restoring {describe_backup(state.manifest)} into {env.target.label}")
    lock = plan.HostLock(rollout.lock_dir(cfg), state.holder.token) if first.locked else None
    state.db = "unknown"
    try:
        restored = run_restore(env, entry, state.manifest, env.target, mode="exact",
                               transport=first.transport, lock=lock)
    except RestoreFailed as exc:
        state.db = exc.database
        raise
    state.db = "restored"
    for warning in restored.warnings:
        ui.warn(warning)
    ui.ok(f"restored {describe_backup(state.manifest)} in {restored.seconds:.1f}s"
          + (f"; dropped first: {exact.named(restored.dropped)}" if restored.dropped else ""))
    had_site = bool(state.paged)
    _start_web(state)
    if state.page_up_at is not None:
        restored.window = time.monotonic() - state.page_up_at
    _page_down(state)
    if had_site:
        with ui.console.status("smoke test"):
            result = smoke.run(cfg)
        if not result.ok and not result.skipped:
            raise UserError(f"the smoke test after the restore failed: {result.failures[-1]}")
        if result.ok and not result.skipped:
            ui.ok(f"smoke test: {result.good} good rounds ({result.seconds:.1f}s)")
    return restored


def _lock(state: _Run) -> None:
    """Take the lock on every host (a host without the app's directory has no app to stop
    and no lock to take)."""
    cfg, holder = state.env.cfg, state.holder
    execute.gather(cfg, state.hosts, take_lock=True, holder=holder, check=False)
    for run in state.hosts:
        assert run.facts is not None
        if run.facts.lock == "held":
            life = run.facts.liveness
            if life is not None and life.stale:
                dead = held_error(run.host, cfg.env, run.facts.holder, 0, life,
                                  cfg.deploy.lock_stale_after)
                raise UserError(f"nothing was restored: {dead.message}", code=75)
            raise UserError(
                f"{run.host} is locked by {describe(run.facts.holder)}: a deploy (or another "
                "restore) is changing the app. Nothing was restored: run again when it is done "
                f"(inv lock.status --env={cfg.env}), or, if that run is dead, release the lock "
                f"(inv lock.release --env={cfg.env} --yes)", code=75)
        if run.facts.lock == "unwritable":
            raise UserError(f"cannot take the lock on {run.host}: {cfg.deploy.app_dir} is not "
                            "writable by the SSH user; nothing was restored")
        if run.facts.current is not None:
            facts.require_ready(run.facts, cfg, run.host, run.transport.host.user)
    ui.ok("lock taken" if any(r.locked for r in state.hosts) else
          f"no host has the app's directory {cfg.deploy.app_dir}: no app to stop")


def _start_web(state: _Run) -> None:
    """Start the current release's web containers again and wait until they are healthy
    (the rollout's first start: `up --wait`): the proxy routes to them before the page."""
    cfg = state.env.cfg
    for run in list(state.stopped):
        assert run.facts is not None and run.facts.current is not None
        compose = compose_path(run.facts.current, cfg.deploy.app_dir)
        for _, step in rollout.roll_steps(cfg, compose, (), token=state.holder.token):
            run_site_step(run.transport, step)
        state.stopped.remove(run)


def _page_down(state: _Run) -> None:
    for run in list(state.paged):
        run_site_step(run.transport, steps.maintenance_off(state.env.cfg))
        state.paged.remove(run)


def _failed(state: _Run, exc: UserError | KeyboardInterrupt, started: float) -> UserError:
    """Put the site back when the database is as it was; release the locks; say where
    things stand and how to go on."""
    why = exc.message if isinstance(exc, UserError) else "interrupted"
    label, backup = state.env.target.label, state.manifest.backup_id
    problems: list[str] = []
    with shielded():
        if state.db == "untouched" and (state.paged or state.stopped):
            ui.warn(f"restore failed ({why.splitlines()[0]}); putting the site back")
            try:
                _start_web(state)
                _page_down(state)
            except UserError as undo:
                problems.append(undo.message)
        _finish(state, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                why, started)
    back = (f"`{state.cmd} --date={state.pre} --yes` brings back the pre-restore backup "
            f"{state.pre} (what it held before)" if state.pre else "")
    if state.db == "untouched":
        where = f"The database {label} was not changed"
        if state.paged or problems:
            where += ("; putting the site back did not fully work: " + "; ".join(problems)
                      + f". Check with `inv status --env={state.env.cfg.env}`")
        elif state.page_up_at is not None:
            where += "; the site is back up"
    elif state.db == "partly":
        where = (f"The database {label} is only partly restored: what it held was dropped, "
                 f"then the restore of backup {backup} stopped halfway. The site stays behind "
                 f"the maintenance page, its web containers stopped. {back}; or fix the cause "
                 f"and run `{state.cmd} --date={backup} --yes` again")
    elif state.db == "unknown":
        where = (f"The database {label} may be partly restored (the restore of backup "
                 f"{backup} was cut off). The site stays behind the maintenance page, its web "
                 f"containers stopped. {back}; or run `{state.cmd} --date={backup} --yes` "
                 "again")
    else:
        where = (f"The database {label} holds backup {backup}, restored exactly. "
                 + ("The site stays behind the maintenance page. " if state.paged else "")
                 + f"Check the app (`inv logs --env={state.env.cfg.env}`), then deploy"
                 + (f"; {back}" if back else ""))
    alert(state.env.cfg, f"backup.restore of {backup} failed: {why.splitlines()[0]}")
    return UserError(f"restore failed: {why}\n{where}",
                     code=exc.code if isinstance(exc, UserError) else 130)


def _finish(state: _Run, result: str, message: str, started: float) -> None:
    """Release the locks this run holds and append the run to each host's audit log."""
    for run in state.hosts:
        if run.locked:
            run.result, run.message = result, message
            finish(state.env.cfg, run, state.holder, action="backup.restore", switch=None,
                   prune=(), started=started)
