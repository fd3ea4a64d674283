"""The host's deploy lock: an atomic `mkdir APP_DIR/lock` holding who took it, when and why.

Its protocol on the host is one shell library, `scripts/lock.sh`, which every script that
touches the lock uses (deploy's, `backup.restore`'s). Taking it is part of the facts command
(`facts.sh`, polling for `--lock-wait` seconds); releasing it is part of the finish command
(`finish.sh`), which removes it only while it still holds this run's token. `inv
lock.release` removes a lock left by a run that died.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fabfile.errors import UserError


@dataclass(frozen=True)
class Holder:
    """What the lock directory says about the run holding it (`holder.json`)."""

    who: str
    when: str
    command: str
    version: str
    pid: int
    token: str

    def to_json(self) -> str:
        data = asdict(self)
        del data["token"]
        return json.dumps(data, sort_keys=True)


def operator() -> str:
    """`user@machine`, plus the CI run when GitHub Actions runs the task."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    who = f"{user}@{socket.gethostname()}"
    run = os.environ.get("GITHUB_RUN_ID")
    if run:
        who += f" (GitHub Actions {os.environ.get('GITHUB_REPOSITORY', '')} run {run})"
    return who


def new_holder(command: str, version: str, *, now: datetime | None = None) -> Holder:
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Holder(who=operator(), when=when, command=command, version=version,
                  pid=os.getpid(), token=secrets.token_hex(8))


def describe(holder: dict[str, Any] | None) -> str:
    """One line naming the holder, from its `holder.json` (which may be missing or partial)."""
    if not holder:
        return "an unknown holder (no holder.json: it died while taking the lock?)"
    who = holder.get("who", "someone")
    parts = [f"{holder.get('command', 'a deploy')} of {holder.get('version', '?')}"]
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']}")
    return f"{who} since {holder.get('when', '?')} ({', '.join(parts)})"


def held_error(host: str, env: str, holder: dict[str, Any] | None, waited: float) -> UserError:
    """The message for a lock someone else holds: who, and the two ways forward."""
    waited_text = f" after waiting {waited:g}s" if waited else ""
    return UserError(
        f"{host} is locked by {describe(holder)}{waited_text}. Wait for it to finish "
        f"(retry with --lock-wait=SECONDS), or, if that run is dead, release it with "
        f"`inv lock.release --env={env} --yes`", code=75)
