"""Run the host steps of `steps` (maintenance page, web drain and stop), one line of output
each: what `db.cutover` and `backup.restore` over a live site go through."""

from __future__ import annotations

import time

from fabfile import ui
from fabfile.config.secrets import redact
from fabfile.deploy.rollout import markers
from fabfile.errors import UserError
from fabfile.remote import Step, Transport


def run_site_step(t: Transport, step: Step) -> str:
    """Run one of `steps`' host steps with a line of output; its stdout. A failure raises
    UserError with the step's `@error` marker, its output's tail and the container logs."""
    started = time.monotonic()
    with ui.console.status(f"{t.host.label}: {step.name}"):
        result = t.probe(step)
    took = time.monotonic() - started
    if not result.ok:
        ui.fail(f"{t.host.label}: {step.name} ({took:.1f}s)")
        m = markers(result.stdout)
        detail = m.get("error", [""])[-1]
        logs = "\n    ".join(m.get("log", []))
        tail = (result.stderr.strip() or "\n".join(
            line for line in result.stdout.splitlines() if not line.startswith("@")))[-600:]
        raise UserError(redact(f"{step.name} failed on {t.host.label}"
                               f"{f' ({detail})' if detail else ''}: {tail or 'no output'}"
                               + (f"\n    {logs}" if logs else "")))
    ui.ok(f"{t.host.label}: {step.name} ({took:.1f}s)")
    return result.stdout
