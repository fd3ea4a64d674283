"""Run deploy and rollback plans on a swarm, through its control manager.

The run machinery is the Compose engine's (`fabfile.deploy.execute._run`: confirm, lock,
plan, act, smoke test, roll back, finish, summary, Slack), given this engine's facts, plans
and failure messages. One host takes part: the first manager. Its lock is the environment's
lock, its `releases/` hold the stack files, and through it the swarm updates every node.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fabfile import ui
from fabfile.config import Config
from fabfile.deploy import execute, lock, release, rollout
from fabfile.deploy import facts as host_facts
from fabfile.deploy.execute import DeployOptions, Engine, HostRun, Report
from fabfile.deploy.facts import Facts
from fabfile.deploy.lock import Holder, held_error, new_holder
from fabfile.deploy.plan import Action, HostPlan, Options
from fabfile.deploy.show import show_plan as show_host_plan
from fabfile.remote import Result, connect

from . import facts as swarm_facts
from .plan import as_data, plan_deploy, plan_rollback, stack_step, web_service
from .render import render_stack_release
from .topology import control


@dataclass
class SwarmRun(HostRun):
    """The control manager's part of a run, with the swarm's facts."""

    swarm: swarm_facts.SwarmFacts | None = None


def _user(run: HostRun) -> str:
    return run.transport.host.user


def gather(cfg: Config, runs: Sequence[HostRun], *, take_lock: bool,
           holder: Holder | None = None, lock_wait: float = 0.0,
           image_refs: Sequence[str] = (), check: bool = True, take_over: bool = False) -> None:
    """The control manager's and the swarm's facts in one command (taking the lock when
    `take_lock`); then one error when it cannot go ahead. The swarm's lock
    is kept alive by the same heartbeat; a stale one is not taken over here (`take_over` has no
    effect: the swarm has no recovery plan yet; `inv lock.release` frees it)."""
    for run in runs:
        assert isinstance(run, SwarmRun)
        step = swarm_facts.gather_step(
            cfg, take_lock=take_lock, lock_wait=lock_wait,
            holder_json=holder.to_json() if holder else "", token=holder.token if holder else "")
        with ui.console.status("gathering facts" + (" and taking the lock" if take_lock else "")):
            result = run.transport.probe(step)
        run.facts = host_facts.parse(result.stdout)
        run.swarm = swarm_facts.parse(result.stdout)
        run.locked = take_lock and run.facts.lock == "taken"
        if run.locked and holder is not None:
            lock.keep_alive(run.transport, rollout.lock_dir(cfg), holder, cfg.deploy.heartbeat)
        if not check:
            continue
        swarm_facts.require_ready(run.facts, run.swarm, cfg, run.host, _user(run))
        if take_lock and run.facts.lock == "held":
            raise held_error(run.host, cfg.env, run.facts.holder, lock_wait)


def _first(m: dict[str, list[str]], key: str) -> str:
    return m[key][0] if key in m else ""


def explain(cfg: Config, run: HostRun, action: Action, result: Result) -> str:
    """What failed on the swarm, what it runs now, and what to do: one message."""
    m = rollout.markers(result.stdout)
    host = run.host
    version = run.plan.version if run.plan else cfg.app.tag
    error = _first(m, "error")
    if action.kind == "upload" or error.startswith("lock-lost") or result.exit_code == 124:
        return execute.explain(cfg, run, action, result)
    if action.kind == "secrets":
        return (f"creating Docker secrets on {host} failed: {error or execute._tail(result)}; "
                "nothing else was changed")
    if action.kind == "migrate":
        logs = execute._tail(result, logs_only=True)
        return (f"the migration job `{' '.join(cfg.app.migrate_command)}` failed on the swarm "
                f"({error or 'exit ' + str(result.exit_code)}); no web task was changed and "
                f"the old version keeps serving. Its output:\n    {logs}\nFix the migration "
                "and deploy again (or pass --skip-migrations if it already ran)")
    down = m.get("node-down", [])
    lost = (f" {'Nodes' if len(down) > 1 else 'Node'} {', '.join(down)} went down meanwhile;"
            " Swarm moved the tasks there to the nodes left." if down else "")
    if "restored" in m:
        now = f" {run.plan.previous if run.plan else 'The previous release'} was deployed " \
              "again and every service runs it."
    elif "restore-failed" in m:
        now = (" Deploying the previous release again failed too: look at `docker service ps "
               f"{web_service(cfg)}` on {host}.")
    elif run.plan and run.plan.previous is None:
        now = " There is no previous release to go back to."
    else:
        now = ""
    tasks = "\n    ".join(m.get("task", []))
    if error.startswith("rolled-back"):
        why = error.removeprefix("rolled-back").strip()
        return (f"{version} failed on the swarm and Swarm rolled the web service back by "
                f"itself ({why or 'a new task failed'}).{now}{lost}" +
                (f"\n    {tasks}" if tasks else ""))
    if error.startswith("paused"):
        return (f"the update to {version} paused on the swarm ({error.removeprefix('paused ')})."
                f"{now}{lost}")
    if error.startswith("timeout"):
        seconds = error.split()[1] if len(error.split()) > 1 else "?"
        return (f"the web service did not converge on {version} within {seconds}s (not every "
                f"task running and healthy).{lost}{now}" + (f"\n    {tasks}" if tasks else ""))
    if error.startswith("stack-deploy"):
        return (f"`docker stack deploy` of {version} failed on {host}: "
                f"{execute._tail(result)}{now}")
    return f"on {host}: step '{action.step.name}' failed (exit {result.exit_code}): " \
           f"{execute._tail(result)}"


def _back_plan(cfg: Config, run: HostRun, back_to: str, token: str) -> HostPlan:
    """After a failed smoke test: deploy the previous release's stack again."""
    assert run.plan is not None
    step = stack_step(cfg, back_to, None, title=f"stack deploy of {back_to} again", token=token)
    return HostPlan(host=run.host, app_dir=cfg.deploy.app_dir, action="rollback",
                    version=release.version_of(back_to), release=back_to,
                    previous=run.plan.release, upload=False, switch=False, image="",
                    images_before=(), roll=True, actions=(Action("stack", step),))


def show(plan: HostPlan, facts: Facts | None, cfg: Config, *, diffs: bool = False) -> None:
    """`fabfile.deploy.show.show_plan`, counting tasks where it counts containers."""
    if plan.noop:
        ui.console.print(f"[bold]{plan.host}[/]: nothing to change: release {plan.release} "
                         f"runs {plan.image} on {len(plan.old_ids)} running web task(s)")
        return
    show_host_plan(plan, facts, cfg, diffs=diffs)


ENGINE = Engine(gather=gather,
                run_plan=functools.partial(execute._run_plan, explain_fn=explain,
                                           back_plan=_back_plan),
                show=show, as_data=as_data)


def _runs(cfg: Config) -> list[HostRun]:
    return [SwarmRun(connect(control(cfg)))]


def deploy(cfg: Config, opts: DeployOptions) -> Report:
    """`inv deploy` on a swarm: bring the stack to the rendered release."""
    skip_drain = rollout.unsafe_skip_drain()
    if skip_drain:
        ui.warn(f"{rollout.SKIP_DRAIN_VAR}=1: tasks started now stop WITHOUT draining (a "
                "test-only switch; requests will fail)")
    files = render_stack_release(cfg, skip_drain=skip_drain)
    holder = opts.holder or new_holder("deploy", cfg.app.tag)
    now = datetime.now(UTC)

    def planner(run: HostRun) -> HostPlan:
        assert isinstance(run, SwarmRun) and run.facts is not None and run.swarm is not None
        rid = release.new_id(now, cfg.app.tag, run.facts.release_ids)
        return plan_deploy(cfg, run.facts, run.swarm, files, run.host, Options(
            release_id=rid, token=holder.token, skip_migrations=opts.skip_migrations))

    return execute._run(cfg, "deploy", holder, _runs(cfg), planner, yes=opts.yes,
                        dry_run=opts.dry_run, lock_wait=opts.lock_wait, image_refs=(),
                        notify_what=f"deploy of {cfg.app.tag} to {cfg.env}", engine=ENGINE)


def rollback(cfg: Config, *, to: str | None, yes: bool, lock_wait: float = 0.0,
             dry_run: bool = False) -> Report:
    """`inv rollback` on a swarm: deploy the previous (or a named) release's stack again."""
    holder = new_holder("rollback", to or "previous")

    def planner(run: HostRun) -> HostPlan:
        assert isinstance(run, SwarmRun) and run.facts is not None and run.swarm is not None
        target = release.resolve(run.facts, to)
        return plan_rollback(cfg, run.facts, run.swarm, target, run.host, holder.token)

    return execute._run(cfg, "rollback", holder, _runs(cfg), planner, yes=yes,
                        dry_run=dry_run, lock_wait=lock_wait, image_refs=(),
                        notify_what=f"rollback of {cfg.env}", engine=ENGINE)


def plans(cfg: Config, *, skip_migrations: bool = False) -> list[tuple[HostRun, HostPlan]]:
    """`inv plan`: what a deploy would do, read-only."""
    files = render_stack_release(cfg, skip_drain=rollout.unsafe_skip_drain())
    runs = read_facts(cfg)
    try:
        out: list[tuple[HostRun, HostPlan]] = []
        for run in runs:
            assert isinstance(run, SwarmRun) and run.facts is not None
            assert run.swarm is not None
            swarm_facts.require_ready(run.facts, run.swarm, cfg, run.host, _user(run))
            rid = release.new_id(datetime.now(UTC), cfg.app.tag, run.facts.release_ids)
            out.append((run, plan_deploy(cfg, run.facts, run.swarm, files, run.host, Options(
                release_id=rid, token="", skip_migrations=skip_migrations))))
        return out
    finally:
        for run in runs:
            run.transport.close()


def read_facts(cfg: Config) -> list[HostRun]:
    """The control manager's and the swarm's facts, read-only; transports left open."""
    runs = _runs(cfg)
    gather(cfg, runs, take_lock=False, check=False)
    return runs

