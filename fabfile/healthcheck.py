"""The web containers' healthcheck, in one place: what Compose runs, and how a deploy proves
beforehand that it can run in the image at all.

Docker runs the check inside the container: exit 0 is healthy, anything else counts as a
failed probe (1 is what Docker documents; 2 is reserved). A deploy drains a container by
creating `app.drain_file`, which the check must notice, so the default and every shell-form
command are wrapped in the drain-file test here. The default probes the app with Python's
standard library: official `python:*-slim` images, which every FastAPI image builds on, ship
neither `wget` nor `curl`.

A shell-form check also tests a *hold* file (`hold_file`): a deploy holds its new containers
out of the proxy's pool with it until they have passed their verification (see
`scripts/roll_up.sh`); the app itself knows nothing of it, unlike the drain file.

A check whose program is missing from the image never passes, so no container ever turns
healthy and the deploy fails only after the health timeout. `probe_argv` is the check
without the drain-file test, run once in a throwaway container of the new image (no network,
so it fails fast): exit 127 (or 126) means the program is missing (or not executable), and
the deploy stops before any container is replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.config import Config

DEFAULT_PROGRAM = "python3"
_PROBE_SCRIPT = ("import sys, urllib.request as u; "
                 "u.urlopen(sys.argv[1], timeout=float(sys.argv[2]))")
_NOT_FOUND = re.compile(r"(?:^|[\s:])([^\s:'\"]+)(?::| is)? (?:command )?not found", re.MULTILINE)


@dataclass(frozen=True)
class Probe:
    """The check as a one-off container runs it: `form` shell (argv for `/bin/sh -c`) or
    exec (the entrypoint and its arguments)."""

    form: str
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        """The program a reader would name: the exec form's first word, the shell command's
        first word that is not a variable assignment."""
        if self.form == "exec":
            return self.argv[0]
        for word in self.argv[0].split():
            if "=" not in word:
                return word
        return self.argv[0]


def url(cfg: Config) -> str:
    return f"http://127.0.0.1:{cfg.app.port}{cfg.app.health_path}"


def default_probe(cfg: Config) -> str:
    """Python's urllib against the health path: non-2xx and timeouts raise, exit 1."""
    return f"{DEFAULT_PROGRAM} -c '{_PROBE_SCRIPT}' {url(cfg)} {cfg.app.healthcheck.timeout}"


def probe(cfg: Config) -> Probe:
    command = cfg.app.healthcheck.command
    if isinstance(command, tuple):
        return Probe("exec", command)
    return Probe("shell", (command if command is not None else default_probe(cfg),))


def hold_file(cfg: Config) -> str | None:
    """Where a deploy holds a new container back (shell-form checks only: an exec-form
    check cannot test a file the deploy could later remove without a shell)."""
    return None if probe(cfg).form == "exec" else f"{cfg.app.drain_file}.hold"


def compose_test(cfg: Config) -> tuple[str, ...]:
    """Compose's `healthcheck.test`: CMD-SHELL with the drain and hold tests, or CMD."""
    check = probe(cfg)
    if check.form == "exec":
        return ("CMD", *check.argv)
    return ("CMD-SHELL", f"test ! -e {cfg.app.drain_file} && test ! -e {hold_file(cfg)} && "
                         f"{{ {check.argv[0]} ; }} || exit 1")


def missing_program(output: str, check: Probe) -> str:
    """The program the shell or Docker said it could not find, else the check's own."""
    match = _NOT_FOUND.search(output)
    if match and match.group(1) not in ("sh", "-c"):
        return match.group(1)
    exec_match = re.search(r'exec: "([^"]+)": executable file not found', output)
    if exec_match:
        return exec_match.group(1)
    return check.program
