"""`inv setup`: make each host ready for deploys, idempotently.

First the same facts command a deploy runs (Docker Engine and Compose v2 present and recent
enough, with the fix when they are not), then `setup.sh`: the app's directory tree,
`acme.json` (mode 600), the external Docker network; then the self-healing watcher when it
is missing, stopped or outdated (`fabfile/heal`). Two commands per host, three with the
watcher's install. With `install`, `fabfile.install` first installs what is missing from
the distribution's packages, and the facts are read again on a fresh login (so the deploy
user's new `docker` group counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabfile import ui
from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.heal import setup as heal
from fabfile.remote import Transport, connect, on_all

from . import facts, rollout, scripts

CHANGE_VERBS = ("installed", "created", "added", "enabled", "started", "fixed")


@dataclass
class SetupResult:
    host: str
    created: list[str] = field(default_factory=list)
    problem: str | None = None
    versions: str = ""
    watcher: heal.Outcome | None = None


def setup_host(cfg: Config, t: Transport, install: bool = False) -> SetupResult:
    out = SetupResult(t.host.label)
    user = t.host.user if t.host.transport == "ssh" else "this user"
    try:
        if install:
            from fabfile.install import run as installer

            out.created += installer.install(cfg, t)
            t.close()
        found = facts.parse(t.probe(facts.gather_step(cfg, take_lock=False)).stdout)
        problem = facts.docker_problem(found, t.host.label, user)
        if problem:
            out.problem = problem
            return out
        result = t.probe(scripts.step("set up the host", "setup", cfg.deploy.app_dir,
                                      cfg.deploy.network, timeout=120))
    except UserError as exc:
        out.problem = exc.message
        return out
    m = rollout.markers(result.stdout)
    out.created += m.get("created", []) + m.get("fixed", [])
    if install:
        out.versions = f"Docker {found.docker}, Compose {found.compose}"
    if not result.ok:
        error = (m.get("error") or [result.stderr.strip() or "no output"])[-1]
        if error.startswith("mkdir"):
            parts = error.split(" ", 2)
            out.problem = (f"cannot create {parts[1] if len(parts) > 1 else cfg.deploy.app_dir} "
                           f"on {t.host.label} as {user}: create {cfg.deploy.app_dir} once as "
                           f"root and hand it over (`sudo install -d -o {user} "
                           f"{cfg.deploy.app_dir}`), then run setup again")
        else:
            out.problem = f"setup failed on {t.host.label}: {error}"
        return out
    out.watcher = heal.ensure(cfg, t, found.watcher)
    return out


def setup(cfg: Config, install: bool = False) -> list[SetupResult]:
    transports = [connect(h) for h in cfg.hosts]
    try:
        with ui.console.status("installing and setting up" if install else "setting up"):
            results = on_all(transports, lambda t: setup_host(cfg, t, install))
    finally:
        for t in transports:
            t.close()
    for r in results:
        if r.problem:
            ui.fail(f"{r.host}: {r.problem}")
        elif r.created:
            ui.ok(f"{r.host}: " + ", ".join(c if c.split(" ")[0] in CHANGE_VERBS else
                                            f"created {c}" for c in r.created))
        elif r.watcher is None:
            ui.ok(f"{r.host}: already set up (nothing to do)")
        else:
            ui.ok(f"{r.host}: already set up")
        if r.versions and not r.problem:
            ui.ok(f"{r.host}: {r.versions}")
        if r.watcher is not None:
            (ui.warn if r.watcher.warning else ui.ok)(f"{r.host}: {r.watcher.text}")
    problems = [r.problem for r in results if r.problem]
    if problems:
        raise UserError(problems[0] if len(problems) == 1 else
                        "setup failed on several hosts:\n  " + "\n  ".join(problems))
    return results
