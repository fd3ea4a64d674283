"""The self-healing watcher's shell scripts (`scripts/*.sh`, package data), read once.

`watch.sh` and `ensure.sh` are written to the host by `install.sh` and run there from their
files (cron and systemd start them); `facts.sh` is a function the deploy's facts script
calls. Values reach every one of them as positional arguments only.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

NAMES = ("watch", "ensure", "install", "facts")


@cache
def body(name: str) -> str:
    """The text of `scripts/<name>.sh`."""
    if name not in NAMES:
        raise KeyError(name)
    return resources.files(__package__).joinpath("scripts", f"{name}.sh").read_text("utf-8")
