"""Run deploy and rollback plans on an environment's hosts.

For every host, in parallel: take the lock and gather facts (one command); from then on the
run keeps a heartbeat in each lock. With `--lock-wait`, a lock whose run died (stale: see
`lock`) is taken over. Then host by host: converge from what a run that died left
(`reconcile`: finish it, or roll forward or back, saying which), plan, run the plan's steps,
smoke-test, roll back by the same rolling procedure when the smoke test fails, and finish
(switch `current`, prune, audit, unlock: one command). Whatever happens (an error, Ctrl-C,
SIGTERM) every lock this run took is released in a `finally`, after any phase left running
on a host has undone or completed itself.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from fabfile import healthcheck, hooks, notify, registry, ui
from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.heal import setup as heal
from fabfile.remote import Result, Transport, connect, on_all
from fabfile.render import RenderedFile, render_release

from . import audit, facts, lock, reconcile, release, rollout, scripts, smoke
from .facts import Facts, Release
from .lock import Holder, held_error, new_holder
from .plan import Action, HostPlan, Options, as_data, images, plan_deploy, plan_rollback
from .show import show_plan


@dataclass
class HostRun:
    """One host's part of a run, and how it ended (`result` is an audit result)."""

    transport: Transport
    facts: Facts | None = None
    plan: HostPlan | None = None
    locked: bool = False
    result: str = "not attempted"
    message: str = ""
    seconds: float = 0.0
    new_ids: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    in_phase: bool = False
    gate: Callable[[], None] | None = None
    """`DeployOptions.gate`, called before the `roll_open` step (or the first roll step)."""
    healthy_at: float | None = None
    """When (`time.monotonic`) the new web containers turned healthy: the proxy routes to
    them `rollout.settle` seconds later at the latest."""

    @property
    def host(self) -> str:
        return self.transport.host.label

    @property
    def commands(self) -> int:
        return self.transport.round_trips


@dataclass
class Report:
    action: str
    runs: list[HostRun]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.result in ("success", "no-change", "planned") for r in self.runs)


@dataclass(frozen=True)
class DeployOptions:
    version: str | None = None
    yes: bool = False
    dry_run: bool = False
    lock_wait: float = 0.0
    skip_migrations: bool = False
    holder: Holder | None = None
    """Deploy under a lock this caller already holds (`db.cutover`); it is released at the end
    like a lock the deploy took itself."""
    during_maintenance: bool = False
    """Go ahead while `inv maintenance.on` holds the site behind its page (which stays)."""
    gate: Callable[[], None] | None = None
    """Called once the new web containers are up, ready and held out of the pool, before
    they are verified and released (`db.cutover` loads the database meanwhile); a UserError
    from it removes them and fails the deploy, the old containers as they were. Only where
    the roll can stop there (`rollout.roll_steps`' GATED); elsewhere it is called before the
    roll."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI cancelling a job, `kill`) unwinds like Ctrl-C, so `finally` blocks run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """While locks are released, Ctrl-C and SIGTERM only print a warning."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        ui.warn("releasing the deploy lock first; this takes a moment")

    old_int = signal.signal(signal.SIGINT, note)
    old_term = signal.signal(signal.SIGTERM, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _user(run: HostRun) -> str:
    return run.transport.host.user if run.transport.host.transport == "ssh" else "this user"


def takeover_line(cfg: Config, holder: Holder) -> str:
    """The audit line of taking over a stale lock (`lock.sh` adds its holder and age)."""
    return audit.record(
        action="lock.takeover", result="taken-over", env=cfg.env, who=holder.who,
        version=holder.version, message=f"{holder.command} took over the lock of a run that "
        f"died: no heartbeat for over {cfg.deploy.lock_stale_after}s, no phase running")


def gather(cfg: Config, runs: Sequence[HostRun], *, take_lock: bool, holder: Holder | None = None,
           lock_wait: float = 0.0, image_refs: Sequence[str] = (), check: bool = True,
           take_over: bool = False) -> None:
    """Facts of every host in parallel (taking the locks when `take_lock`, then keeping a
    heartbeat in each; with `take_over`, taking over stale ones); then one error naming
    every host that cannot go ahead."""
    by_transport = {id(r.transport): r for r in runs}
    line = takeover_line(cfg, holder) if take_lock and take_over and holder else ""

    def one(t: Transport) -> UserError | None:
        run = by_transport[id(t)]
        try:
            result = t.probe(facts.gather_step(
                cfg, take_lock=take_lock, lock_wait=lock_wait,
                holder_json=holder.to_json() if holder else "",
                token=holder.token if holder else "", images=image_refs, takeover_audit=line))
            run.facts = facts.parse(result.stdout)
        except UserError as exc:
            return exc
        run.locked = take_lock and run.facts.lock == "taken"
        if run.locked and holder is not None:
            lock.keep_alive(t, rollout.lock_dir(cfg), holder, cfg.deploy.heartbeat)
        return None

    with ui.console.status("gathering facts" + (" and taking the lock" if take_lock else "")):
        errors = on_all([r.transport for r in runs], one)
    problems: list[str] = []
    for run, error in zip(runs, errors, strict=True):
        if error is not None:
            problems.append(error.message)
            continue
        assert run.facts is not None
        if not check:
            continue
        if run.facts.taken_over is not None:
            ui.warn(f"{run.host}: {run.facts.taken_over.describe()}")
        try:
            facts.require_ready(run.facts, cfg, run.host, _user(run))
            if take_lock and run.facts.lock == "held":
                raise held_error(run.host, cfg.env, run.facts.holder, lock_wait,
                                 run.facts.liveness, cfg.deploy.lock_stale_after)
        except UserError as exc:
            problems.append(exc.message)
    if problems:
        code = 75 if all("is locked by" in p for p in problems) else 1
        raise UserError(problems[0] if len(problems) == 1 else
                        "several hosts cannot go ahead:\n  " + "\n  ".join(problems), code=code)


def _tail(result: Result, lines: int = 15, *, logs_only: bool = False) -> str:
    """The last lines of a step's output (container logs only, with `logs_only`)."""
    kept = [line.removeprefix("@log ")
            for line in (result.stdout + "\n" + result.stderr).splitlines()
            if line.strip() and (line.startswith("@log ") or not (
                logs_only or line.startswith("@")))]
    return redact("\n    ".join(kept[-lines:])) or "no output"


def explain(cfg: Config, run: HostRun, action: Action, result: Result) -> str:
    """What failed, what state the host is in now, and what to do: one message."""
    m = rollout.markers(result.stdout)
    host, kind = run.host, action.kind
    if "error" in m and m["error"][-1].startswith("lock-lost"):
        return (f"the deploy lock on {host} is no longer this run's (taken over as stale after "
                "its heartbeats stopped, or released with `inv lock.release`): stopped before "
                "changing anything else; check with `inv status`, then deploy again")
    if result.exit_code == 124:
        return f"on {host}: step '{action.step.name}' timed out: {_tail(result)}"
    detail = m.get("error", [""])[-1]
    if kind == "upload":
        if detail.startswith("disk-full"):
            free = detail.split(" ", 1)[1] if " " in detail else "?"
            size = len(action.step.stdin or b"")
            return (f"the disk of {host} is full: {cfg.deploy.app_dir} has {free} KB free, "
                    f"too little to unpack the release ({size} bytes compressed). Nothing was "
                    "changed. Free some space (`docker image prune -a`, `docker system df` "
                    "shows what uses it) and deploy again")
        return f"uploading the release to {host} failed: {_tail(result)}"
    if kind == "pull":
        return _pull_failed(cfg, host, detail, result)
    if kind == "services":
        return (f"starting {detail.removeprefix('services ') or 'services'} on {host} failed; "
                f"the web service was not touched: {_tail(result)}")
    if detail.startswith("health-missing"):
        return _health_missing(cfg, host, result)
    if kind == "migrate":
        command = " ".join(cfg.app.migrate_command)
        return (f"the migration `{command}` failed on {host} (exit {result.exit_code}); no web "
                f"container was changed and the old version keeps serving. Its output:\n    "
                f"{_tail(result)}\nFix the migration and deploy again (or pass "
                "--skip-migrations if it already ran)")
    version = run.plan.version if run.plan else cfg.app.tag
    removed = "its new containers were removed and the old ones keep serving"
    if kind in ("roll_up", "roll_open"):
        if detail.startswith("unhealthy"):
            parts = detail.split()
            cid = parts[1][:12] if len(parts) > 1 else "?"
            state = "/".join(parts[2:]) or "?"
            return (f"{version} never turned healthy on {host}: container {cid} is {state}; "
                    f"{removed}. Its last log lines:\n    {_tail(result, logs_only=True)}")
        if detail.startswith("timeout"):
            return (f"{version} did not turn healthy on {host} within "
                    f"{rollout.up_timeout(cfg)}s (deploy.health_timeout + start_period); "
                    f"{removed}")
        if detail.startswith("verify"):
            return _verify_failed(cfg, version, host, detail, result, removed)
        if detail.startswith("hold"):
            return (f"could not hold the new containers of {version} out of the proxy's pool "
                    f"on {host} ({detail.removeprefix('hold').strip() or 'docker exec failed'}); "
                    f"{removed}")
        if detail.startswith("first-start"):
            return (f"{version} never turned healthy on {host} (first start); its containers "
                    f"were removed. Last log lines:\n    {_tail(result)}")
        if detail.startswith("count"):
            return f"Compose started an unexpected number of containers on {host}: {detail}"
        return f"starting {version} on {host} failed; {removed}: {_tail(result)}"
    if kind == "roll_drain":
        if detail.startswith("still-healthy"):
            return (f"old containers on {host} stayed healthy after their drain file "
                    f"{cfg.app.drain_file} was created: the web healthcheck must fail while it "
                    f"exists (templates/compose.yml.j2). The drain was undone: {removed}")
        return f"draining the old containers on {host} failed ({detail}); {removed}"
    return f"on {host}: step '{action.step.name}' failed (exit {result.exit_code}): {_tail(result)}"


def _pull_failed(cfg: Config, host: str, detail: str, result: Result) -> str:
    """The host could not log in to the registry, or not pull an image."""
    reg = cfg.registry
    what, _, rest = detail.partition(" ")
    if what == "login" and reg is not None:
        secret = reg.password.name if reg.password else "?"
        return (f"{host} could not log in to the registry {reg.server} as {reg.username} "
                f"({rest or 'no detail'}): check the secret {secret}; nothing was changed and "
                "no credential was left on the host")
    if what == "pull":
        image, _, why = rest.partition(" ")
        return (f"pulling {image} on {host} failed ({why or 'no detail'}): check app.image, the "
                "tag and that the host reaches the registry; nothing was changed")
    return f"pulling images on {host} failed: {_tail(result)}"


def _verify_failed(cfg: Config, version: str, host: str, detail: str, result: Result,
                   removed: str) -> str:
    """A new container turned healthy but a `deploy.verify.paths` request failed."""
    if detail == "verify-no-client":
        return (f"cannot verify {version} on {host}: the host has none of curl, wget or python3 "
                f"to request deploy.verify.paths with; {removed}. Install curl on the host")
    parts = detail.split()
    path, cid, code = [*parts, "?", "?", "?", "?"][1:4]
    answer = "no answer" if code in ("000", "no-address") else f"HTTP {code}"
    return (f"{version} failed its verification on {host}: GET {path} from new container "
            f"{cid[:12]} got {answer} (deploy.verify.paths must answer 2xx); {removed}. Its "
            f"last log lines:\n    {_tail(result, logs_only=True)}")


def _health_missing(cfg: Config, host: str, result: Result) -> str:
    """The healthcheck cannot run in the new image: which program is missing, the key."""
    check = healthcheck.probe(cfg)
    output = "\n".join(rollout.markers(result.stdout).get("log", []))
    program = healthcheck.missing_program(output, check)
    form = "the default check" if cfg.app.healthcheck.command is None else "the check"
    return (f"the web healthcheck cannot run in {cfg.image_ref} on {host}: `{program}` is not "
            f"in the image ({form} runs `{' '.join(check.argv)}`). No container was replaced "
            f"and no migration ran; the old version keeps serving. Set app.healthcheck.command "
            f"to a check the image can run (a string runs in its /bin/sh, a list runs as is), "
            f"or add `{program}` to the image")


Explain = Callable[[Config, HostRun, Action, Result], str]


def run_action(cfg: Config, run: HostRun, action: Action,
               explain_fn: Explain | None = None) -> Result:
    """Run one step, one line of output (plus its `@warning` lines); raise UserError with
    `explain_fn`'s message (the Compose engine's `explain` by default)."""
    started = time.monotonic()
    run.in_phase = action.kind not in ("upload", "pull")
    try:
        with ui.console.status(f"{run.host}: {action.step.name}"):
            result = run.transport.probe(action.step)
    finally:
        run.in_phase = False
    took = time.monotonic() - started
    m = rollout.markers(result.stdout)
    for warning in m.get("warning", []):
        ui.warn(f"{run.host}: {redact(warning)}")
    if not result.ok:
        ui.fail(f"{run.host}: {action.step.name} ({took:.1f}s)")
        if "removed" in m:
            run.new_ids = ()
        raise UserError((explain_fn or explain)(cfg, run, action, result))
    if action.kind in ("roll_up", "roll_open"):
        if "new" in m:
            run.new_ids = tuple(m["new"][-1].split())
        if "healthy" in m:
            run.healthy_at = time.monotonic()
    for key in ("healthy", "unhealthy", "stopping", "stopped"):
        if key in m:
            run.timings[f"{action.kind}.{key}"] = float(m[key][-1])
    run.timings[action.kind] = run.timings.get(action.kind, 0.0) + took
    ui.ok(f"{run.host}: {action.step.name} ({took:.1f}s)")
    return result


def finish(cfg: Config, run: HostRun, holder: Holder, *, action: str, switch: str | None,
           prune: Sequence[str], started: float, keep_lock: bool = False,
           line: str | None = None) -> None:
    """Switch/prune/audit/unlock in one command (`keep_lock`: the run goes on, holding it);
    problems become warnings (it runs in `finally` blocks and must not hide the error that
    got there). `line` replaces the audit line made from the run's plan and result."""
    plan = run.plan
    line = line or audit.record(
        action=action, result=run.result, env=cfg.env, who=holder.who,
        version=plan.version if plan else holder.version,
        release=plan.release if plan else None, previous=plan.previous if plan else None,
        seconds=time.monotonic() - started,
        message=run.message.splitlines()[0] if run.message else "")
    wait = rollout.abort_wait(cfg) if run.result == "interrupted" else 0
    clean = cfg.app.image if switch and run.result == "success" else ""
    title = "finish: switch, prune, audit" + ("" if keep_lock else ", unlock")
    step = scripts.step(title, "finish", cfg.deploy.app_dir, holder.token, str(math.ceil(wait)),
                        switch or "", line, clean, "keep" if keep_lock else "", *prune,
                        timeout=wait + 60)
    try:
        result = run.transport.probe(step)
    except UserError as exc:
        ui.warn(f"{run.host}: could not release the deploy lock ({exc.message}); check with "
                f"`inv lock.status --env={cfg.env}`")
        return
    except OSError as exc:
        ui.warn(f"{run.host}: could not release the deploy lock ({exc}); check with "
                f"`inv lock.status --env={cfg.env}`")
        return
    m = rollout.markers(result.stdout)
    run.locked = "kept" in m
    lost = "lock-not-ours" in m or "lock-gone" in m
    if "image-removed" in m:
        ui.ok(f"{run.host}: removed {len(m['image-removed'])} image(s) no kept release uses: "
              + ", ".join(m["image-removed"]))
    if "aborting" in m:
        ui.warn(f"{run.host}: stopped the interrupted phase '{m['aborting'][-1]}'"
                + (" (it is still running!)" if "still-running" in m else ""))
    if lost:
        ui.warn(f"{run.host}: the lock is no longer this run's (taken over as stale, or "
                "released by hand): left it alone" + (f"; `current` was NOT switched to {switch}"
                                                      if switch else ""))
        if switch and run.result == "success":
            run.result, run.message = "failed", "lost the lock before switching `current`"
    if not result.ok:
        ui.warn(f"{run.host}: finishing did not fully succeed: {_tail(result)}")
    elif switch and "switched" in m:
        ui.ok(f"{run.host}: current -> {switch}")


def _smoke(cfg: Config, run: HostRun) -> smoke.Result:
    plan = run.plan
    with ui.console.status(f"{run.host}: smoke test"):
        if plan is not None and plan.roll and not plan.old_ids and smoke.targets(cfg):
            # A first start: nothing routed this name before, so the proxy shows the new
            # containers only after its throttle (404 until then).
            time.sleep(rollout.settle(cfg))
        result = smoke.run(cfg, transport=run.transport,
                           direct=run.facts is not None and run.facts.in_maintenance)
    if result.skipped:
        ui.warn(f"{run.host}: smoke test skipped: {result.skipped}")
    elif result.ok:
        ui.ok(f"{run.host}: smoke test: {result.good} good rounds ({result.seconds:.1f}s)")
    else:
        ui.fail(f"{run.host}: smoke test: {len(result.failures)} failures in "
                f"{result.seconds:.0f}s: {result.failures[-1]}")
    return result


def _watcher(cfg: Config, run: HostRun) -> None:
    """Install or restart the host's self-healing watcher when it needs it (after the lock is
    released: it would only defer to this run); its problems are warnings."""
    assert run.facts is not None
    if cfg.deploy.engine == "swarm":
        return  # Swarm replaces failed tasks itself (restart_policy).
    outcome = heal.ensure(cfg, run.transport, run.facts.watcher)
    if outcome is not None:
        (ui.warn if outcome.warning else ui.ok)(f"{run.host}: {outcome.text}")


def _back_plan(cfg: Config, run: HostRun, back_to: str, token: str) -> HostPlan:
    """The Compose engine's way back after a failed smoke test: the same rolling procedure,
    replacing the containers the deploy just started."""
    assert run.facts is not None
    return plan_rollback(cfg, run.facts, back_to, run.host, token=token, web_ids=run.new_ids,
                         skip_drain=rollout.unsafe_skip_drain())


def _gate_at(plan: HostPlan) -> str | None:
    """The step the run's gate (`DeployOptions.gate`) comes before: the release of the held
    new containers (`roll_open`), or else the first step that touches the database or the
    web containers."""
    kinds = [a.kind for a in plan.actions]
    if "roll_open" in kinds:
        return "roll_open"
    return next((k for k in kinds if k in ("migrate", "roll_up")), None)


def _pass_gate(cfg: Config, run: HostRun, holder: Holder, action: Action) -> None:
    """Wait at the run's gate before ACTION; when it fails, the held new containers go
    (drained, stopped, removed) and the error goes on."""
    gate, run.gate = run.gate, None
    assert gate is not None
    try:
        gate()
    except UserError:
        if action.kind == "roll_open" and run.new_ids:
            with shielded():
                run_action(cfg, run, Action("roll_drain", rollout.drain_step(
                    cfg, run.new_ids, token=holder.token, what="held new")))
            run.new_ids = ()
        raise


def _run_plan(cfg: Config, run: HostRun, holder: Holder, started: float, *,
              explain_fn: Explain | None = None,
              back_plan: Callable[[Config, HostRun, str, str], HostPlan] = _back_plan) -> None:
    """Run one host's plan to the end: steps, smoke test, rollback when it fails, finish,
    the self-healing watcher."""
    plan = run.plan
    assert plan is not None and run.facts is not None
    if plan.noop:
        run.result = "no-change"
        run.message = "already up to date"
        finish(cfg, run, holder, action=plan.action, switch=None, prune=(), started=started)
        ui.ok(f"{run.host}: nothing to change")
        _watcher(cfg, run)
        return
    gate_at = _gate_at(plan) if run.gate is not None else None
    for action in plan.actions:
        if action.kind == gate_at:
            _pass_gate(cfg, run, holder, action)
            gate_at = None
        run_action(cfg, run, action, explain_fn)
    check = _smoke(cfg, run)
    if check.ok:
        run.result = "success"
        live = plan.release if plan.switch else run.facts.current
        prune = release.to_prune(
            [*run.facts.releases, Release(plan.release, True)], live,
            cfg.deploy.keep_releases) if plan.switch else []
        finish(cfg, run, holder, action=plan.action, switch=plan.release if plan.switch else None,
               prune=prune, started=started)
        _watcher(cfg, run)
        return
    why = f"smoke test failed: {check.failures[-1]}"
    back_to = plan.previous if plan.action == "deploy" else None
    if not back_to or back_to == plan.release or not plan.roll:
        run.result = "failed"
        run.message = f"{why}; no earlier release to roll back to"
        raise UserError(f"{run.host}: {run.message}: the new version stays up, unverified")
    ui.warn(f"{run.host}: {why}; rolling back to {back_to}")
    back = back_plan(cfg, run, back_to, holder.token)
    for action in back.actions:
        run_action(cfg, run, action, explain_fn)
    run.result = "rolled-back"
    run.message = f"{why}; rolled back to {back_to}"
    finish(cfg, run, holder, action=plan.action, switch=None,
           prune=[plan.release] if plan.upload else [], started=started)
    _watcher(cfg, run)
    raise UserError(f"{run.host}: {why}. Rolled back to {back_to} "
                    f"({release.version_of(back_to)}), which is serving again")


def _finish_all(cfg: Config, runs: Sequence[HostRun], holder: Holder, action: str,
                started: float, current: HostRun | None, error: BaseException | None) -> None:
    with shielded():
        for run in runs:
            if not run.locked:
                continue
            if run is current:
                if isinstance(error, KeyboardInterrupt):
                    run.result, run.message = "interrupted", "interrupted by the operator"
                elif run.result in ("not attempted", "success"):
                    run.result = "failed"
                    run.message = str(error) if error else "stopped"
            else:
                run.result = "cancelled"
                why = str(error).splitlines()[0] if error and str(error) else "interrupted"
                run.message = f"nothing changed here: the run stopped ({why})"
            prune = ([run.plan.release] if run.plan and run.plan.upload
                     and run.result != "success" else [])
            finish(cfg, run, holder, action=action, switch=None, prune=prune, started=started)


def _summary(report: Report) -> None:
    rows = []
    for run in report.runs:
        plan = run.plan
        note = run.message.splitlines()[0] if run.message else ""
        rows.append([run.host, run.result, plan.version if plan else "",
                     plan.release if plan else "", f"{run.seconds:.1f}s", str(run.commands),
                     note if len(note) <= 100 else note[:97] + "..."])
    ui.console.print(ui.table(f"{report.action} summary ({report.seconds:.1f}s)",
                              ["host", "result", "version", "release", "time", "commands",
                               "note"], rows))


def _notify(cfg: Config, report: Report, what: str) -> None:
    failed = [r for r in report.runs if r.result not in ("success", "no-change")]
    notes = "; ".join(f"{r.host}: {r.result}: {r.message.splitlines()[0] if r.message else ''}"
                      for r in failed)
    if not failed:
        text, level = f"{what} succeeded on {len(report.runs)} host(s)", "success"
    elif any(r.result == "rolled-back" for r in failed):
        text, level = f"{what} ROLLED BACK: {notes}", "warning"
    else:
        text, level = f"{what} FAILED: {notes}", "failure"
    problem = notify.send(cfg, text, level)  # type: ignore[arg-type]
    if problem:
        ui.warn(problem)


def _confirm_or_refuse(cfg: Config, yes: bool, what: str) -> bool:
    """True when the operator must be asked; refuses at once without a terminal."""
    if not cfg.deploy.confirm or yes:
        return False
    if not sys.stdin.isatty():
        raise UserError(f"{what} on {cfg.env} needs confirmation (deploy.confirm) and there is "
                        "no terminal to ask on: pass --yes (as CI does) to go ahead", code=2)
    return True


def _recover(cfg: Config, run: HostRun, holder: Holder, wanted: str | None,
             started: float) -> bool:
    """Converge from what a run that died left on this host (`reconcile`), saying what it
    finds and what it does; True when that changed the host (its facts are then stale)."""
    found = run.facts
    assert found is not None
    dead = found.taken_over
    rec = reconcile.plan_recovery(cfg, found, token=holder.token, wanted_image=wanted)
    if rec is None:
        if dead is not None:
            ui.step(f"{run.host}: the {dead.command} of {dead.version} that died had not "
                    f"changed what serves (the containers run `current`, "
                    f"{found.current or 'none'}): nothing to finish; going on from there")
        return False
    ui.warn(f"{run.host}: {rec.found}")
    ui.step(f"{run.host}: {rec.says}")
    if rec.direction == "roll":
        return False
    for action in rec.actions:
        run_action(cfg, run, action)
    result, switch, prune = "success", rec.switch, rec.prune
    message = (f"finished the interrupted run of {rec.release} ({rec.direction}); `current` "
               f"was {found.current}" if switch else
               f"retired the containers of the interrupted run of {rec.release}; `current` "
               f"({found.current}) serves")
    if switch:
        check = _smoke(cfg, run)
        if not check.ok:
            why = f"the smoke test of {rec.release} failed: {check.failures[-1]}"
            if not found.current or found.current not in found.release_ids:
                raise UserError(f"{run.host}: {why}; no earlier release to roll back to: it "
                                "stays up, unverified, and `current` was not switched")
            ui.warn(f"{run.host}: {why}; rolling back to {found.current}")
            ours = tuple(c.id for c in found.service(cfg.app.name) if c.release == rec.release)
            back = plan_rollback(cfg, found, found.current, run.host, token=holder.token,
                                 web_ids=ours, skip_drain=rollout.unsafe_skip_drain())
            for action in back.actions:
                run_action(cfg, run, action)
            result, switch, prune = "rolled-back", None, (rec.release,) if rec.release else ()
            message = f"{why}; rolled back to {found.current}"
    line = audit.record(action="recover", result=result, env=cfg.env, who=holder.who,
                        version=release.version_of(switch or found.current or ""),
                        release=switch or found.current, previous=found.current,
                        seconds=time.monotonic() - started, message=message)
    finish(cfg, run, holder, action="recover", switch=switch, prune=prune, started=started,
           keep_lock=True, line=line)
    if not run.locked:
        raise UserError(f"{run.host}: lost the deploy lock while converging: stopped")
    return True


@dataclass(frozen=True)
class Engine:
    """What differs between engines in a run: facts, running a plan, showing it."""

    gather: Callable[..., None]
    run_plan: Callable[[Config, HostRun, Holder, float], None]
    show: Callable[[HostPlan, Facts | None, Config], None] = show_plan
    as_data: Callable[[HostPlan], dict[str, object]] = as_data
    recover: Callable[[Config, HostRun, Holder, str | None, float], bool] | None = None


def _run(cfg: Config, action: str, holder: Holder, runs: list[HostRun],
         planner: Callable[[HostRun], HostPlan], *, yes: bool, dry_run: bool,
         lock_wait: float, image_refs: Sequence[str], notify_what: str,
         wanted: str | None = None, engine: Engine | None = None,
         hook: hooks.Hooks | None = None) -> Report:
    started = time.monotonic()
    report = Report(action, runs)
    engine = engine or Engine(gather, _run_plan, recover=_recover)
    ask = False if dry_run else _confirm_or_refuse(cfg, yes, action)
    current: HostRun | None = None
    error: BaseException | None = None
    confirmed: list[dict[str, object]] = []
    try:
        with sigterm_as_interrupt():
            if dry_run or ask:
                engine.gather(cfg, runs, take_lock=False, image_refs=image_refs)
                for run in runs:
                    run.plan = planner(run)
                    engine.show(run.plan, run.facts, cfg)
                    run.result = "planned"
                if dry_run:
                    ui.ok("dry run: nothing was changed")
                    return report
                if not ui.confirm(f"{action} {cfg.env} as planned above?", assume_yes=False):
                    raise UserError("cancelled: nothing was changed")
                confirmed = [engine.as_data(r.plan) for r in runs if r.plan]
            engine.gather(cfg, runs, take_lock=True, holder=holder, lock_wait=lock_wait,
                          image_refs=image_refs, take_over=lock_wait > 0)
            if confirmed and confirmed != [engine.as_data(planner(r)) for r in runs]:
                raise UserError("the hosts changed between the plan you confirmed and taking "
                                "the lock (another deploy?): nothing was changed; run again")
            for run in runs:
                current = run
                if engine.recover and engine.recover(cfg, run, holder, wanted, started):
                    engine.gather(cfg, [run], take_lock=True, holder=holder,
                                  image_refs=image_refs)
            current = None
            for run in runs:
                run.plan = planner(run)
                if not confirmed:
                    engine.show(run.plan, run.facts, cfg)
            if hook is not None:
                planned = next(r.plan for r in runs if r.plan)
                hook.version, hook.release = planned.version, planned.release
                hook.pre()
            for run in runs:
                current = run
                t0 = time.monotonic()
                try:
                    engine.run_plan(cfg, run, holder, started)
                finally:
                    run.seconds = time.monotonic() - t0
                current = None
    except (UserError, KeyboardInterrupt) as exc:
        error = exc
        if current is not None and current.result in ("not attempted", "success"):
            if isinstance(exc, KeyboardInterrupt):
                current.result, current.message = "interrupted", "interrupted by the operator"
            else:
                current.result, current.message = "failed", exc.message
        raise
    finally:
        _finish_all(cfg, runs, holder, action, started, current, error)
        report.seconds = time.monotonic() - started
        attempted = any(r.result not in ("not attempted", "planned") for r in runs)
        if attempted:
            _summary(report)
            _notify(cfg, report, notify_what)
        for run in runs:
            run.transport.close()
        if hook is not None:
            hook.post(*_outcome(runs))
    if not report.ok:
        raise UserError(f"{action} of {cfg.env} did not succeed on every host")
    return report


def _outcome(runs: Sequence[HostRun]) -> tuple[str, str]:
    """The run's outcome for the post hooks, and what went wrong (first line)."""
    results = {r.result for r in runs}
    bad = next((r.message for r in runs if r.result not in ("success", "no-change")), "")
    if results <= {"success", "no-change"}:
        return ("success" if "success" in results else "no-change"), ""
    for outcome in ("interrupted", "rolled-back"):
        if outcome in results:
            return outcome, bad
    return "failed", bad


def _hook(cfg: Config, task: str, holder: Holder, dry_run: bool) -> hooks.Hooks | None:
    return None if dry_run else hooks.Hooks(cfg, task, hosts=tuple(h.address for h in cfg.hosts),
                                            performer=holder.who)


def deploy(cfg: Config, opts: DeployOptions) -> Report:
    """`inv deploy`: bring every host of the environment to the rendered release."""
    files: tuple[RenderedFile, ...] = render_release(cfg)
    if cfg.registry is not None:
        with ui.console.status(f"checking {cfg.app.image}:{cfg.app.tag} in {cfg.registry.server}"):
            found = registry.require(cfg, cfg.app.tag)
        ui.ok(f"{cfg.image_ref} is in {cfg.registry.server}"
              + (f" ({found.digest[:19]})" if found and found.digest else ""))
    holder = opts.holder or new_holder("deploy", cfg.app.tag)
    now = datetime.now(UTC)
    runs = [HostRun(connect(h)) for h in cfg.hosts]
    skip_drain, skip_hold = rollout.unsafe_skip_drain(), rollout.unsafe_skip_hold()
    if skip_drain:
        ui.warn(f"{rollout.SKIP_DRAIN_VAR}=1: old containers are stopped WITHOUT draining "
                "(a test-only switch; requests will fail)")
    if skip_hold:
        ui.warn(f"{rollout.SKIP_HOLD_VAR}=1: new containers take traffic BEFORE they are "
                "verified (a test-only switch; requests may fail)")

    def planner(run: HostRun) -> HostPlan:
        assert run.facts is not None
        if run.facts.in_maintenance and not opts.during_maintenance:
            raise UserError(f"{run.host} is in maintenance (`inv maintenance.on`): a deploy now "
                            "would go out behind the page unannounced. Pass "
                            "--during-maintenance to deploy anyway (the page stays up), or "
                            f"`inv maintenance.off --env={cfg.env}` first")
        rid = release.new_id(now, cfg.app.tag, run.facts.release_ids)
        run.gate = opts.gate
        return plan_deploy(cfg, run.facts, files, run.host, Options(
            release_id=rid, token=holder.token, skip_migrations=opts.skip_migrations,
            skip_drain=skip_drain, skip_hold=skip_hold, gated=opts.gate is not None))

    return _run(cfg, "deploy", holder, runs, planner, yes=opts.yes, dry_run=opts.dry_run,
                lock_wait=opts.lock_wait, image_refs=sorted(set(images(files).values())),
                notify_what=f"deploy of {cfg.app.tag} to {cfg.env}", wanted=cfg.image_ref,
                hook=_hook(cfg, "deploy", holder, opts.dry_run))


def rollback(cfg: Config, *, to: str | None, yes: bool, lock_wait: float = 0.0,
             dry_run: bool = False) -> Report:
    """`inv rollback`: roll every host back to the previous (or a named) release."""
    holder = new_holder("rollback", to or "previous")
    runs = [HostRun(connect(h)) for h in cfg.hosts]

    def planner(run: HostRun) -> HostPlan:
        assert run.facts is not None
        target = release.resolve(run.facts, to)
        release.refuse_stale_sqlite(run.facts, target, run.host)
        return plan_rollback(cfg, run.facts, target, run.host, token=holder.token,
                             skip_drain=rollout.unsafe_skip_drain())

    return _run(cfg, "rollback", holder, runs, planner, yes=yes, dry_run=dry_run,
                lock_wait=lock_wait, image_refs=(), notify_what=f"rollback of {cfg.env}",
                wanted=None, hook=_hook(cfg, "rollback", holder, dry_run))


def read_facts(cfg: Config) -> list[HostRun]:
    """Every host's facts, read-only (status, lock.status, plan); transports left open. On a
    swarm: the control manager's, with the swarm's."""
    if cfg.deploy.engine == "swarm":
        from fabfile.swarm.execute import read_facts as read_swarm

        return read_swarm(cfg)
    runs = [HostRun(connect(h)) for h in cfg.hosts]
    gather(cfg, runs, take_lock=False, check=False)
    return runs
