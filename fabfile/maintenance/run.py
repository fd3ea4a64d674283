"""Put every host of an environment behind the maintenance page, or take it down.

On each host, under its deploy lock (no deploy, rollback or restore meanwhile): `on` starts
the operator's page (`steps.manual_on`: its routers outrank the web routers, so it takes
every request once the proxy routes to it, while the web containers keep running); `off`
first makes sure a healthy web container is there to take the traffic back, then drains and
removes the page (`steps.maintenance_off`). Each host's run is one line of its audit log; the
lock is released in a `finally`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from fabfile import notify, ui
from fabfile.config import Config
from fabfile.cutover import steps
from fabfile.cutover.site import run_site_step
from fabfile.deploy import rollout
from fabfile.deploy.execute import HostRun, finish, gather, shielded, sigterm_as_interrupt
from fabfile.deploy.lock import Holder, new_holder
from fabfile.errors import UserError
from fabfile.remote import connect

MAX_MESSAGE = 500


def check_message(message: str | None) -> str | None:
    """The page's message, or the error for one that cannot be shown."""
    if message is None:
        return None
    text = message.strip()
    if not text or len(text) > MAX_MESSAGE or any(ord(ch) < 32 for ch in text):
        raise UserError(f"--message: expected one line of text, 1 to {MAX_MESSAGE} characters "
                        "(it is shown on the page, HTML-escaped)")
    return text


def turn_on(cfg: Config, message: str | None, lock_wait: float = 0.0) -> None:
    """`inv maintenance.on`: the operator's page on every host."""
    holder = new_holder("maintenance.on", "")
    manual = steps.Manual(by=holder.who, since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          message=message)

    def one(run: HostRun) -> None:
        out = run_site_step(run.transport, steps.manual_on(cfg, manual))
        m = rollout.markers(out)
        if "kept" in m:
            run.result, run.message = "no-change", "the page was already up, saying the same"
        else:
            run.result = "success"
            run.message = "replaced the page that was up" if "removed" in m else "page up"

    _on_every_host(cfg, holder, "maintenance.on", lock_wait, one)
    _notify(cfg, f"{cfg.env} is in maintenance (by {holder.who})", "warning")


def turn_off(cfg: Config, lock_wait: float = 0.0) -> None:
    """`inv maintenance.off`: take the page down on every host, web containers first checked."""
    holder = new_holder("maintenance.off", "")

    def one(run: HostRun) -> None:
        assert run.facts is not None
        if run.facts.maintenance is None:
            run.result, run.message = "no-change", "no maintenance page"
            return
        if not any(c.serving for c in run.facts.service(cfg.app.name)):
            raise UserError(
                f"no healthy {cfg.app.name} container runs on {run.host}: taking the page down "
                "would leave the site without an answer, so it stays up. Deploy first "
                f"(`inv deploy --env={cfg.env} --during-maintenance`), then turn maintenance off")
        run_site_step(run.transport, steps.maintenance_off(cfg))
        run.result, run.message = "success", "page down"

    _on_every_host(cfg, holder, "maintenance.off", lock_wait, one)
    _notify(cfg, f"{cfg.env} is out of maintenance (by {holder.who})", "success")


def _on_every_host(cfg: Config, holder: Holder, action: str, lock_wait: float,
                   one: Callable[[HostRun], None]) -> None:
    """Take every host's lock, run `one` host by host, release the locks with an audit line
    each; a host that failed stops the run (the hosts after it are left as they were)."""
    started = time.monotonic()
    runs = [HostRun(connect(h)) for h in cfg.hosts]
    current: HostRun | None = None
    try:
        with sigterm_as_interrupt():
            gather(cfg, runs, take_lock=True, holder=holder, lock_wait=lock_wait)
            for run in runs:
                current = run
                one(run)
                if run.result == "no-change":
                    ui.ok(f"{run.host}: {run.message}")
                current = None
    except (UserError, KeyboardInterrupt) as exc:
        if current is not None:
            current.result = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            current.message = exc.message if isinstance(exc, UserError) else "interrupted"
        raise
    finally:
        with shielded():
            for run in runs:
                if run.locked:
                    if run.result == "not attempted":
                        run.result, run.message = "cancelled", "the run stopped before this host"
                    finish(cfg, run, holder, action=action, switch=None, prune=(),
                           started=started)
            for run in runs:
                run.transport.close()


def _notify(cfg: Config, text: str, level: str) -> None:
    problem = notify.send(cfg, text, level)  # type: ignore[arg-type]
    if problem:
        ui.warn(problem)
