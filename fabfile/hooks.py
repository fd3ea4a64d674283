"""The team's own steps around a deploy, a rollback and a build: executables in `hooks/` at
the project root, run where the task runs (a laptop, a CI runner), as Kamal's hooks are.

`pre-deploy`, `pre-rollback`, `pre-build` run once the task knows what it will do and before
it changes anything (for deploy and rollback: after the plan, before the first step on any
host); a failing one (non-zero exit) stops the task there. `post-deploy`, `post-rollback`,
`post-build` run at the end whatever the outcome, once their pre-hook passed; a failing one
is reported and changes nothing (the deploy it follows is done). A hook that is missing is
skipped; one that exists but cannot run is an error. Each gets the process environment plus
`HOOK_VARS` (see the README).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fabfile import ui
from fabfile.config import Config
from fabfile.config.secrets import redact
from fabfile.errors import UserError

NAMES = ("pre-deploy", "post-deploy", "pre-rollback", "post-rollback", "pre-build",
         "post-build")
HOOK_VARS = {
    "SHIPYARD_HOOK": "the hook's name, e.g. pre-deploy",
    "SHIPYARD_TASK": "deploy, rollback or build",
    "SHIPYARD_ENV": "the environment, e.g. prod",
    "SHIPYARD_VERSION": "the version (image tag) deployed, rolled back to or built",
    "SHIPYARD_IMAGE": "the image reference, IMAGE:TAG",
    "SHIPYARD_RELEASE": "the release id on the hosts (deploy: the new one; rollback: the one "
                        "rolled back to; build: empty)",
    "SHIPYARD_HOSTS": "the hosts' addresses, comma-separated (build: empty)",
    "SHIPYARD_PERFORMER": "who runs the task (user@machine, plus the CI run)",
    "SHIPYARD_RECORDED_AT": "when the task started, UTC, ISO 8601",
    "SHIPYARD_OUTCOME": "post hooks: success, no-change, rolled-back, failed or interrupted",
    "SHIPYARD_RUNTIME": "post hooks: seconds since the task started",
    "SHIPYARD_MESSAGE": "post hooks: what went wrong, one line (empty on success)",
}


def hooks_dir(cfg: Config) -> Path:
    return Path(cfg.root or ".") / "hooks"


def find(cfg: Config, name: str) -> Path | None:
    """The hook's file, or None when there is none; an error when it cannot run."""
    assert name in NAMES, name
    path = hooks_dir(cfg) / name
    if not path.exists():
        return None
    if not path.is_file() or not os.access(path, os.X_OK):
        raise UserError(f"the {name} hook {path} is not an executable file: "
                        f"`chmod +x {path}` (or remove it)")
    return path


@dataclass
class Hooks:
    """The pre and post hooks of one task run. `release`, `version` and `hosts` are filled
    in once the task knows them; `post` runs only after `pre` passed."""

    cfg: Config
    task: str
    version: str = ""
    release: str = ""
    hosts: tuple[str, ...] = ()
    performer: str = ""
    started: float = field(default_factory=time.monotonic)
    recorded_at: str = field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    passed: bool = False

    def environ(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        values = {
            "SHIPYARD_HOOK": name, "SHIPYARD_TASK": self.task, "SHIPYARD_ENV": self.cfg.env,
            "SHIPYARD_VERSION": self.version,
            "SHIPYARD_IMAGE": f"{self.cfg.app.image}:{self.version}" if self.version else "",
            "SHIPYARD_RELEASE": self.release, "SHIPYARD_HOSTS": ",".join(self.hosts),
            "SHIPYARD_PERFORMER": self.performer, "SHIPYARD_RECORDED_AT": self.recorded_at,
            **(extra or {}),
        }
        return {**os.environ, **values}

    def pre(self) -> None:
        """Run `pre-<task>`; a failure raises UserError (the task stops there)."""
        name = f"pre-{self.task}"
        code = _run(self.cfg, name, self.environ(name))
        if code:
            raise UserError(f"the {name} hook failed (exit {code}), so the {self.task} stopped "
                            "before changing anything. Fix the hook's cause and run again")
        self.passed = True

    def post(self, outcome: str, message: str = "") -> None:
        """Run `post-<task>` with the outcome; a failure is reported, never raised."""
        if not self.passed:
            return
        name = f"post-{self.task}"
        extra = {"SHIPYARD_OUTCOME": outcome,
                 "SHIPYARD_RUNTIME": f"{time.monotonic() - self.started:.0f}",
                 "SHIPYARD_MESSAGE": message.splitlines()[0] if message else ""}
        try:
            code = _run(self.cfg, name, self.environ(name, extra))
        except UserError as exc:
            ui.warn(exc.message)
            return
        if code:
            ui.warn(f"the {name} hook failed (exit {code}); the {self.task} itself "
                    f"{'succeeded' if outcome in ('success', 'no-change') else 'ended: ' + outcome}"
                    " and stays as it is")


def _run(cfg: Config, name: str, environ: Mapping[str, str]) -> int:
    """Run the hook if there is one, its output passed on (secrets redacted); exit code."""
    path = find(cfg, name)
    if path is None:
        return 0
    ui.step(f"hook {name}")
    started = time.monotonic()
    try:
        proc = subprocess.Popen([str(path)], cwd=Path(cfg.root or "."), env=dict(environ),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise UserError(f"the {name} hook {path} cannot run: {exc.strerror or exc} (does its "
                        "first line name an interpreter that exists, e.g. #!/bin/sh?)") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  {redact(line.rstrip())}", flush=True)
    code = proc.wait()
    took = time.monotonic() - started
    if code:
        ui.fail(f"hook {name} exited {code} ({took:.1f}s)")
    else:
        ui.ok(f"hook {name} ({took:.1f}s)")
    return code
