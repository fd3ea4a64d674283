"""The host's deploy lock: an atomic `mkdir APP_DIR/lock` holding who took it, when and why.

Its protocol on the host is one shell library, `scripts/lock.sh`, which every script that
touches the lock uses (deploy's, `backup.restore`'s). Taking it is part of the facts command
(`facts.sh`, polling for `--lock-wait` seconds); releasing it is part of the finish command
(`finish.sh`), which removes it only while it still holds this run's token.

While a run holds it, the run proves it is alive: its client keeps a heartbeat in the lock
(`keep_alive`: a background command on the run's own connection, fed a line every few
seconds, not a round trip), and so does each detached phase on the host (`phase.sh`). A
lock whose heartbeats stopped over `deploy.lock_stale_after` seconds ago, with no phase
running, is stale: its run died. `deploy --lock-wait` takes over a stale deploy's or
rollback's lock by itself; `inv lock.release` removes any lock left by a run that died.
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
from fabfile.remote import Transport

from . import scripts

RECOVERABLE = ("deploy", "rollback")
"""Commands whose stale lock a deploy may take over (`lock_recoverable` in `lock.sh`): it
converges from what they left. A restore or cutover that died needs a person."""


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


@dataclass(frozen=True)
class Liveness:
    """How a lock that another run holds looks on the host: seconds since its holder's last
    sign of life (a heartbeat, else the taking of the lock), whether it is stale, and where
    its client and its phase run (their heartbeats' text)."""

    age: int | None = None
    stale: bool = False
    client: str | None = None
    phase: str | None = None

    def describe(self, stale_after: int) -> str:
        """`last heartbeat 3s ago (client ...; phase ...)`, or why it is stale: `no heartbeat
        for 95s (over 60s), no phase running (...)`."""
        if self.age is None:
            return "no heartbeat"
        text = (f"no heartbeat for {self.age}s (over {stale_after}s), no phase running"
                if self.stale else f"last heartbeat {self.age}s ago")
        parts = [f"client {self.client}"] if self.client else []
        if self.phase:
            parts.append(f"phase {self.phase}")
        return text + (f" ({'; '.join(parts)})" if parts else "")


@dataclass(frozen=True)
class TakenOver:
    """A stale lock this run took over: its holder (`holder.json`) and how long it had been
    without a heartbeat."""

    holder: dict[str, Any] | None
    stale_for: int | None

    def describe(self) -> str:
        since = f"no heartbeat for {self.stale_for}s" if self.stale_for is not None else "stale"
        return f"took over the stale lock of {describe(self.holder)}: {since}, no phase running"

    @property
    def command(self) -> str:
        return str((self.holder or {}).get("command") or "run")

    @property
    def version(self) -> str:
        return str((self.holder or {}).get("version") or "?")


def recoverable(holder: dict[str, Any] | None) -> bool:
    """Whether a deploy may take this holder's lock over once it is stale."""
    return holder is None or holder.get("command") in RECOVERABLE


def keep_alive(transport: Transport, lock_dir: str, holder: Holder, every: float) -> None:
    """Keep this run's client heartbeat in the lock on `transport`'s host until the transport
    closes (or this process dies: the heartbeat then stops by itself)."""
    transport.heartbeat(scripts.step("heartbeat", "heartbeat", lock_dir, holder.token,
                                     f"{holder.who} pid {holder.pid}"), every)


def describe(holder: dict[str, Any] | None) -> str:
    """One line naming the holder, from its `holder.json` (which may be missing or partial)."""
    if not holder:
        return "an unknown holder (no holder.json: it died while taking the lock?)"
    who = holder.get("who", "someone")
    parts = [f"{holder.get('command', 'a deploy')} of {holder.get('version', '?')}"]
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']}")
    return f"{who} since {holder.get('when', '?')} ({', '.join(parts)})"


def held_error(host: str, env: str, holder: dict[str, Any] | None, waited: float,
               life: Liveness | None = None, stale_after: int = 60) -> UserError:
    """The message for a lock someone else holds: who, whether it lives, the ways forward."""
    waited_text = f" after waiting {waited:g}s" if waited else ""
    who = describe(holder)
    release = f"`inv lock.release --env={env} --yes`"
    if life is not None and life.stale:
        dead = (f"{host} is locked by {who}, a run that died: no heartbeat for {life.age}s "
                f"(deploy.lock_stale_after: {stale_after}s) and no phase of it runs"
                f"{waited_text}.")
        if recoverable(holder):
            return UserError(
                f"{dead} `inv deploy --env={env} --lock-wait=SECONDS` takes such a lock over "
                f"by itself and converges from what that run left; or release it with "
                f"{release}", code=75)
        command = (holder or {}).get("command", "run")
        return UserError(
            f"{dead} A {command} that died is not taken over by itself (the database or the "
            f"maintenance page may be half-way): check with `inv status --env={env}`, release "
            f"the lock with {release} and run the {command} again", code=75)
    beat = f" ({life.describe(stale_after)})" if life is not None and life.age is not None \
        else ""
    return UserError(
        f"{host} is locked by {who}{beat}{waited_text}. Wait for it to finish "
        f"(retry with --lock-wait=SECONDS), or, if that run is dead, release it with "
        f"{release}", code=75)
