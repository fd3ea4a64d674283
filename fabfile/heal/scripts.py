"""The self-healing watcher's shell scripts (`scripts/*.sh`, package data, through the one
loader `fabfile.shell`).

`watch.sh` (after the deploy lock's library, which it only reads) and `ensure.sh` are
written to the host by `install.sh` and run there from their files (cron and systemd start
them); `facts.sh` is the `heal_facts` function the deploy's facts script calls. Values reach
every one of them as positional arguments only.
"""

from __future__ import annotations

from fabfile import shell

SCRIPTS = shell.Scripts("fabfile.heal", {
    "watch": ("fabfile.deploy:lock",), "ensure": (), "install": (), "facts": ()})
NAMES = SCRIPTS.names


def body(name: str) -> str:
    """The text of `scripts/<name>.sh`, after the libraries it uses."""
    return SCRIPTS.body(name)
