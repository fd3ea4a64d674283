"""The shell scripts a deploy runs on hosts (`scripts/*.sh`, package data), read once by the
one loader, `fabfile.shell`.

Each runs as `sh -c BODY NAME ARG...`: the text is constant and every value arrives as a
positional argument, so nothing is ever spliced into shell source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from fabfile import shell
from fabfile.remote import Step, script

NAMES = ("facts", "upload", "phase", "services", "migrate", "roll_up", "roll_drain", "finish",
         "setup", "lock_release", "smoke", "pull", "heartbeat")
WITH_LIBRARY = ("roll_up", "roll_drain", "migrate", "smoke")
"""Scripts that get `scripts/lib.sh` (the rollout's shared functions) prepended."""
WITH_LOCK = ("facts", "phase", "finish", "lock_release", "heartbeat")
"""Scripts that get `scripts/lock.sh` (the host lock's protocol) prepended."""
PACKAGE = "fabfile.deploy"
LOCK_LIBRARY = f"{PACKAGE}:lock"
"""The lock library, for the scripts of other packages that hold the host lock."""
WITH_HEAL_FACTS = ("facts",)
HEAL_FACTS = "fabfile.heal:facts"
"""The self-healing watcher's part of the facts (`heal_facts`), prepended to `facts.sh`."""


@dataclass(frozen=True)
class PhaseLock:
    """The lock a phase runs under: its directory, the token of the run holding it, and
    the seconds between two of the phase's heartbeats."""

    path: str
    token: str
    beat: int


@cache
def body(name: str) -> str:
    """The text of `scripts/<name>.sh`, after the libraries it uses."""
    if name not in NAMES:
        raise KeyError(name)
    libraries = [lib for lib, users in (("lock", WITH_LOCK), ("lib", WITH_LIBRARY),
                                        (HEAL_FACTS, WITH_HEAL_FACTS)) if name in users]
    return shell.body(PACKAGE, name, libraries)


def step(title: str, name: str, *args: str, stdin: bytes | None = None,
         timeout: float | None = None, check: bool = True) -> Step:
    """A step running `scripts/<name>.sh` with `args`."""
    return script(title, body(name), *args, stdin=stdin, timeout=timeout, check=check)


def phase(title: str, lock: PhaseLock, name: str, *args: str,
          timeout: float | None = None) -> Step:
    """A step running `scripts/<name>.sh` through `phase.sh`: detached from the connection,
    only while `lock.token` holds the lock, with its own heartbeat."""
    return script(title, body("phase"), lock.path, lock.token, str(lock.beat), name, body(name),
                  *args, timeout=timeout)


def shown(argv: Sequence[str]) -> list[str]:
    """`argv` with every script body replaced by `<name.sh>`: readable, stable for goldens."""
    names = {body(n): f"<{n}.sh>" for n in NAMES}
    return [names.get(arg, arg) for arg in argv]
