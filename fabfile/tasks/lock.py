"""`lock` namespace: see and release the hosts' deploy locks."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from fabfile.errors import UserError
from fabfile.tasks._adapter import friendly
from fabfile.tasks.config import ENV_HELP

# `fabfile.deploy` (with `fabfile.remote`: paramiko), `fabfile.ui` (rich) and the configuration
# loader are imported inside the tasks, only when they run.


@task(help={"env": ENV_HELP})
@friendly
def status(c: Context, env: str) -> None:
    """Show who holds each host's deploy lock, and whether that run is alive."""
    from fabfile import ui
    from fabfile.config import load_config
    from fabfile.deploy import execute, lock
    from fabfile.deploy.show import lock_state

    cfg = load_config(env)
    runs = execute.read_facts(cfg)
    rows = []
    for run in runs:
        run.transport.close()
        assert run.facts is not None
        held = run.facts.lock == "held"
        life = run.facts.liveness
        rows.append([run.host, lock_state(run.facts),
                     life.describe(cfg.deploy.lock_stale_after) if held and life else "",
                     lock.describe(run.facts.holder) if held else ""])
    ui.console.print(ui.table(f"deploy locks of {env}", ["host", "lock", "heartbeat", "holder"],
                              rows))
    if any(lock_state(r.facts) == "stale" for r in runs if r.facts):
        ui.console.print(f"stale: its run died (no heartbeat for over "
                         f"{cfg.deploy.lock_stale_after}s, no phase running). `inv deploy "
                         f"--env={env} --lock-wait=SECONDS` takes over a deploy's or a "
                         f"rollback's stale lock by itself; `inv lock.release --env={env} "
                         "--yes` removes any")


@task(help={
    "env": ENV_HELP,
    "yes": "release without asking (needed without a terminal)",
    "host": "only this host (its address), when the environment has several",
})
@friendly
def release(c: Context, env: str, yes: bool = False, host: str = "") -> None:
    """Remove a dead run's deploy lock (asks first)."""
    from fabfile import ui
    from fabfile.config import load_config
    from fabfile.deploy import audit, execute, lock, rollout, scripts

    cfg = load_config(env)
    runs = [r for r in execute.read_facts(cfg) if not host or r.transport.host.address == host]
    if not runs:
        raise UserError(f"--host={host}: not a host of {env}")
    try:
        for run in runs:
            assert run.facts is not None
            if run.facts.lock != "held":
                ui.ok(f"{run.host}: not locked")
                continue
            who = lock.describe(run.facts.holder)
            life = run.facts.liveness
            state = f" ({life.describe(cfg.deploy.lock_stale_after)})" if life else ""
            if not ui.confirm(f"{run.host} is locked by {who}{state}. Release it? Only do so "
                              "when that run is dead", assume_yes=yes):
                raise UserError(f"{run.host}: lock left in place (pass --yes to release it "
                                "without a terminal)")
            line = audit.record(action="lock.release", result="released", env=env,
                                who=lock.operator(), message=f"released the lock of {who}")
            result = run.transport.probe(scripts.step(
                "release the lock", "lock_release", cfg.deploy.app_dir, line, timeout=60))
            m = rollout.markers(result.stdout)
            if "phase-running" in m:
                raise UserError(f"{run.host}: a deploy phase is still running there "
                                f"({m['phase-running'][-1]}): its run is alive; wait for it")
            if not result.ok:
                raise UserError(f"{run.host}: could not release the lock: "
                                f"{result.stderr.strip()[-300:]}")
            ui.ok(f"{run.host}: released the lock of {who}")
    finally:
        for run in runs:
            run.transport.close()


namespace = Collection("lock")
namespace.add_task(status, name="status")
namespace.add_task(release, name="release")
