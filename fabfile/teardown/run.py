"""`inv remove`: show what goes and what stays on each host, ask, take every host's lock,
then remove the app from each host: its self-healing watcher first (`fabfile.heal`), then
everything else in one round trip (`scripts/remove.sh`, which appends the audit line and
releases the lock itself)."""

from __future__ import annotations

import sys
import time

from fabfile import ui
from fabfile.config import Config
from fabfile.deploy import audit, rollout
from fabfile.deploy.execute import HostRun, finish, gather, shielded, sigterm_as_interrupt
from fabfile.deploy.lock import Holder, held_error, new_holder
from fabfile.errors import UserError
from fabfile.heal import plan as heal_plan
from fabfile.remote import connect
from fabfile.shell import Scripts

SCRIPTS = Scripts("fabfile.teardown", {"remove": ("fabfile.deploy:lock",)})


def describe(cfg: Config, run: HostRun, purge: bool) -> str:
    """What removing the app does on this host, one line."""
    assert run.facts is not None
    f = run.facts
    if not f.app_dir:
        return f"{run.host}: nothing to remove ({cfg.deploy.app_dir} does not exist)"
    kept = ["acme.json", "the backup cache", "volumes", "audit.log"]
    return (f"{run.host}: stop and remove {len(f.containers)} container(s), the networks, "
            f"{len(f.releases)} release(s) under {cfg.deploy.app_dir}; "
            + ("PURGE acme.json, the backup cache and the volumes too (audit.log stays)"
               if purge else f"keep {', '.join(kept)}"))


def remove(cfg: Config, *, purge: bool, yes: bool) -> None:
    holder = new_holder("remove", "purge" if purge else "")
    runs = [HostRun(connect(h)) for h in cfg.hosts]
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            gather(cfg, runs, take_lock=False, check=False)
            for run in runs:
                ui.step(describe(cfg, run, purge))
            runs = [r for r in runs if r.facts is not None and r.facts.app_dir]
            if not runs:
                ui.ok("nothing to remove")
                return
            _confirm(cfg, purge, yes)
            gather(cfg, runs, take_lock=True, holder=holder, check=False)
            for run in runs:
                assert run.facts is not None
                if run.facts.lock == "held":
                    raise held_error(run.host, cfg.env, run.facts.holder, 0)
                if run.facts.lock != "taken":
                    raise UserError(f"cannot take the deploy lock on {run.host} (the SSH user "
                                    f"cannot write to {cfg.deploy.app_dir}): nothing was removed")
            for run in runs:
                _remove_host(cfg, run, holder, purge, started)
    finally:
        with shielded():
            for run in runs:
                if run.locked:
                    run.result, run.message = "cancelled", "the run stopped before this host"
                    finish(cfg, run, holder, action="remove", switch=None, prune=(),
                           started=started)
                run.transport.close()


def _confirm(cfg: Config, purge: bool, yes: bool) -> None:
    what = (f"Remove {cfg.project} from {cfg.env}" + (" and PURGE its certificates, backup "
            "cache and volumes" if purge else "") + "?")
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError(f"removing the app from {cfg.env} needs confirmation and there is no "
                        "terminal to ask on: pass --yes to go ahead", code=2)
    if not ui.confirm(what, assume_yes=False):
        raise UserError("cancelled: nothing was removed")


def _remove_host(cfg: Config, run: HostRun, holder: Holder, purge: bool,
                 started: float) -> None:
    line = audit.record(action="remove", result="success", env=cfg.env, who=holder.who,
                        seconds=time.monotonic() - started,
                        message="purged" if purge else "kept acme.json, backup cache, volumes")
    assert run.facts is not None
    if run.facts.watcher is not None:
        stopped = run.transport.probe(heal_plan.remove_step(cfg.deploy.app_dir))
        if not stopped.ok:
            raise UserError(f"could not stop the self-healing watcher on {run.host} "
                            f"({stopped.stderr.strip()[-300:] or 'no output'}): nothing was "
                            f"removed; run `inv remove --env={cfg.env}` again")
        ui.ok(f"{run.host}: removed the self-healing watcher")
    cache = cfg.backup.cache_dir if cfg.backup else ""
    step = SCRIPTS.step(f"remove {cfg.project}", "remove", cfg.deploy.app_dir, cfg.project,
                        cfg.deploy.network, holder.token, str(cfg.app.stop_grace_period),
                        "1" if purge else "0", line, cache,
                        timeout=cfg.app.stop_grace_period + 120)
    with ui.console.status(f"{run.host}: removing {cfg.project}"):
        result = run.transport.probe(step)
    m = rollout.markers(result.stdout)
    run.locked = "done" not in m
    for key in ("removed", "kept"):
        for item in m.get(key, []):
            (ui.ok if key == "removed" else ui.step)(f"{run.host}: {key} {item}")
    if not result.ok:
        problems = ", ".join(m.get("error", [])) or result.stderr.strip()[-300:] or "no output"
        raise UserError(f"removing {cfg.project} from {run.host} did not fully work ({problems})"
                        f"; run `inv remove --env={cfg.env}` again")
    ui.ok(f"{run.host}: {cfg.project} removed")
