"""How plans and host states look on the terminal (rich), secrets redacted by `ui`."""

from __future__ import annotations

from rich.text import Text

from fabfile import ui
from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError
from fabfile.heal import plan as heal_plan

from . import audit, lock, smoke
from .facts import Facts
from .plan import HostPlan


def show_plan(plan: HostPlan, facts: Facts | None, cfg: Config, *, diffs: bool = False) -> None:
    """The plan for one host: what changes and why, then the steps, one line each."""
    console = ui.console
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
    show_releases(facts)
    crows = [[c.name, c.service, c.image, c.state, _health(facts, c.id, c.health),
              c.release or "?", *_restarts(facts, c.id)]
             for c in sorted(facts.containers, key=lambda c: (c.service, c.name))
             if not c.oneoff]
    console.print(ui.table("containers", ["name", "service", "image", "state", "health",
                                          "release", "restarts", "last health restart"],
                           crows or [["none", "", "", "", "", "", "", ""]]))
    console.print(f"self-healing: {watcher_line(cfg, facts)}")
    show_lock(facts)


def show_releases(facts: Facts) -> None:
    rows = [[("* " if r.id == facts.current else "  ") + r.id,
             "live" if r.live else "staged (never live)"] for r in reversed(facts.releases)]
    ui.console.print(ui.table("releases (* = current)", ["release", "state"],
                              rows or [["none", ""]]))


def show_lock(facts: Facts) -> None:
    """The lock's holder and the last audit entry."""
    holder = lock.describe(facts.holder) if facts.lock == "held" else "free"
    ui.console.print(f"lock: {holder}")
    ui.console.print(f"last: {audit.summary(facts.last_audit)}")


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
