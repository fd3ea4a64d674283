"""How plans and host states look on the terminal (rich), secrets redacted by `ui`."""

from __future__ import annotations

from rich.text import Text

from fabfile import ui
from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.heal import plan as heal_plan

from . import audit, lock, reconcile, smoke
from .facts import Facts
from .plan import HostPlan


def show_plan(plan: HostPlan, facts: Facts | None, cfg: Config, *, diffs: bool = False) -> None:
    """The plan for one host: what changes and why, then the steps, one line each."""
    console = ui.console
    rec = reconcile.plan_recovery(cfg, facts, token="", wanted_image=plan.image or None) \
        if facts else None
    if rec is not None:
        console.print(f"[bold]{plan.host}[/]: {rec.found}")
        console.print(f"  first: {rec.says}")
    if plan.noop:
        web = facts.service(cfg.app.name) if facts else ()
        console.print(f"[bold]{plan.host}[/]: nothing to change: release {plan.release} runs "
                      f"{plan.image} on {len(web)} healthy web container(s)")
        return
    where = f"release {plan.release}" + (f" (now {plan.previous})" if plan.previous else "")
    console.print(f"[bold]{plan.host}[/]: {plan.action} {plan.version}, {where}")
    if plan.action == "deploy" and plan.roll:
        before = ", ".join(plan.images_before) or "none"
        console.print(f"  image: {before} -> {plan.image}")
    if plan.reasons:
        console.print("  why: " + redact("; ".join(plan.reasons)))
    changed = [c for c in plan.changes if c.status != "unchanged"]
    if changed:
        parts = []
        for c in changed:
            keys = f" (keys: {', '.join(c.keys)})" if c.keys else ""
            parts.append(f"{c.path} {c.status}{keys}")
        console.print("  files: " + "; ".join(parts))
    if diffs:
        for c in changed:
            if c.secret or not c.diff or c.status == "added":
                continue
            for line in c.diff.splitlines():
                style = ("green" if line.startswith("+") and not line.startswith("+++") else
                         "red" if line.startswith("-") and not line.startswith("---") else
                         "dim" if line.startswith("@@") else "")
                console.print(Text("    " + redact(line), style=style))
    console.print("  steps:")
    for i, action in enumerate(plan.actions, 1):
        console.print(f"    {i}. {redact(action.step.name)}")
    targets = smoke.targets(cfg)
    tail = []
    if targets:
        tail.append(f"smoke-test {len(targets)} URL(s)")
    if plan.switch:
        tail.append(f"switch current -> {plan.release}")
    tail.append("audit, unlock")
    console.print(f"    then: {', '.join(tail)}")


def show_status(cfg: Config, host: str, facts: Facts) -> None:
    """Releases (current marked), containers, lock holder and last deploy of one host."""
    console = ui.console
    console.print(f"[bold]{host}[/]: Docker {facts.docker or 'missing'}, Compose "
                  f"{facts.compose or 'missing'}, {cfg.deploy.app_dir} "
                  f"{'present' if facts.app_dir else 'MISSING (run inv setup)'}")
    show_releases(cfg, facts)
    found = reconcile.mismatch(cfg, facts)
    if found is not None:
        ui.warn(f"{found}; the next `inv deploy` converges from it (`--lock-wait=SECONDS` also "
                "takes over the lock of a run that died)")
    crows = [[c.name, c.service, c.image, c.state, _health(facts, c.id, c.health),
              c.release or "?", *_restarts(facts, c.id)]
             for c in sorted(facts.containers, key=lambda c: (c.service, c.name))
             if not c.oneoff]
    console.print(ui.table("containers", ["name", "service", "image", "state", "health",
                                          "release", "restarts", "last health restart"],
                           crows or [["none", "", "", "", "", "", "", ""]]))
    console.print(f"self-healing: {watcher_line(cfg, facts)}")
    page = maintenance_line(facts)
    if page:
        console.print(Text(redact(f"maintenance: {page}"),
                           style="bold yellow" if facts.in_maintenance else ""))
    show_lock(cfg, facts)


def show_releases(cfg: Config, facts: Facts) -> None:
    """The releases, newest first, the current one marked."""
    running = {c.release for c in facts.service(cfg.app.name) if c.state == "running"}
    rows = [[("* " if r.id == facts.current else "  ") + r.id,
             ("live" if r.live else "staged (never live)")
             + (", its containers run" if r.id in running and r.id != facts.current else "")]
            for r in reversed(facts.releases)]
    ui.console.print(ui.table("releases (* = current)", ["release", "state"],
                              rows or [["none", ""]]))


def show_lock(cfg: Config, facts: Facts) -> None:
    """The lock's holder (and whether its run lives) and the last audit entry."""
    ui.console.print(f"lock: {lock_line(cfg, facts)}")
    ui.console.print(f"last: {audit.summary(facts.last_audit)}")


def maintenance_line(facts: Facts) -> str | None:
    """The status line for the page on a host; None when there is none."""
    page = facts.maintenance
    if page is None:
        return None
    if page.manual and page.up:
        message = page.label("message")
        return (f"ON since {page.label('since') or '?'} by {page.label('by') or '?'}"
                f" ({page.health}{f', says: {message}' if message else ''}): every request "
                "gets the maintenance page; `inv maintenance.off` ends it")
    if page.up:
        return (f"a maintenance page from db.cutover or backup.restore is up ({page.health}); "
                "it takes the traffic only while no web container is healthy")
    return f"a stopped maintenance page container is left ({page.state})"


def _health(facts: Facts, cid: str, health: str) -> str:
    kept = facts.restarts.get(cid)
    return f"{health} (watcher gave up)" if kept and kept.gave_up else health


def _restarts(facts: Facts, cid: str) -> list[str]:
    """`3 (1 crash, 2 health)` and the last health restart's time, for one container."""
    found = facts.restarts.get(cid)
    if found is None or not found.total:
        return ["0", "-"]
    return [f"{found.total} ({found.crashes} crash, {found.health} health)",
            found.last_health or "-"]


def watcher_line(cfg: Config, facts: Facts) -> str:
    """The self-healing watcher of one host, with the fix when it is not watching."""
    hc, w = cfg.app.healthcheck, facts.watcher
    if not hc.self_heal:
        return "off (app.healthcheck.self_heal: false)"
    if w is None:
        return f"NOT INSTALLED: run `inv setup --env={cfg.env}`"
    if not w.running:
        return f"installed but NOT RUNNING: run `inv setup --env={cfg.env}`"
    try:
        current = w.fingerprint == heal_plan.fingerprint(cfg)
    except UserError:
        current = False
    if not current:
        return (f"running with other settings than environments/{cfg.env}.yaml: run "
                f"`inv setup --env={cfg.env}`")
    boot = {"systemd": "systemd user unit", "cron": "cron"}.get(
        w.supervisor, "nothing restarts it after a reboot")
    return (f"watching ({boot}): restarts a web container {hc.restart_after}s after it turns "
            f"unhealthy, at most {hc.max_restarts} times in {hc.restart_window}s")


def lock_state(facts: Facts) -> str:
    """`free`, `held` or `stale` (held by a run that died)."""
    if facts.lock != "held":
        return facts.lock
    return "stale" if facts.liveness is not None and facts.liveness.stale else "held"


def lock_line(cfg: Config, facts: Facts) -> str:
    """Who holds the lock and whether that run lives (how long since its last heartbeat)."""
    if facts.lock != "held":
        return facts.lock
    life = facts.liveness.describe(cfg.deploy.lock_stale_after) if facts.liveness else ""
    state = lock_state(facts)
    return f"{state}: {lock.describe(facts.holder)}" + (f"; {life}" if life else "")
