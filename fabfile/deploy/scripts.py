"""The shell scripts a deploy runs on hosts (`scripts/*.sh`, package data), read once.

Each runs as `sh -c BODY NAME ARG...`: the text is constant and every value arrives as a
positional argument, so nothing is ever spliced into shell source.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

from fabfile.heal import scripts as heal_scripts
from fabfile.remote import Step, script

NAMES = ("facts", "upload", "phase", "services", "migrate", "roll_up", "roll_drain", "finish",
         "setup", "lock_release", "smoke", "pull")
WITH_LIBRARY = ("roll_up", "roll_drain", "migrate", "smoke")
"""Scripts that get `scripts/lib.sh` (the rollout's shared functions) prepended."""


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("scripts", f"{name}.sh").read_text("utf-8")


@cache
def body(name: str) -> str:
    """The text of `scripts/<name>.sh` (after `lib.sh` for the rollout phases, after
    `heal_facts` for the facts)."""
    if name not in NAMES:
        raise KeyError(name)
    if name == "facts":
        return heal_scripts.body("facts") + "\n" + _read(name)
    return _read("lib") + "\n" + _read(name) if name in WITH_LIBRARY else _read(name)


def step(title: str, name: str, *args: str, stdin: bytes | None = None,
         timeout: float | None = None, check: bool = True) -> Step:
    """A step running `scripts/<name>.sh` with `args`."""
    return script(title, body(name), *args, stdin=stdin, timeout=timeout, check=check)


def phase(title: str, lock_dir: str, name: str, *args: str, timeout: float | None = None) -> Step:
    """A step running `scripts/<name>.sh` through `phase.sh`: detached from the connection."""
    return script(title, body("phase"), lock_dir, name, body(name), *args, timeout=timeout)


def shown(argv: Sequence[str]) -> list[str]:
    """`argv` with every script body replaced by `<name.sh>`: readable, stable for goldens."""
    names = {body(n): f"<{n}.sh>" for n in NAMES}
    return [names.get(arg, arg) for arg in argv]
