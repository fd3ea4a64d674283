"""The watcher's part of a host's facts (`scripts/facts.sh`), parsed purely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Watcher:
    """The watcher installed on a host: which install (`fingerprint`), whether it runs, and
    what brings it back after a reboot (`systemd`, `cron` or `none`)."""

    fingerprint: str
    running: bool
    supervisor: str


@dataclass(frozen=True)
class Restarts:
    """One container's restarts: by Docker's restart policy after its process exited
    (`crashes`) and by the watcher after it hung (`health`, the last at `last_health`)."""

    crashes: int
    health: int
    last_health: str | None
    gave_up: bool

    @property
    def total(self) -> int:
        return self.crashes + self.health


def parse_watcher(rest: str) -> Watcher | None:
    """`FINGERPRINT running|stopped SUPERVISOR`."""
    parts = rest.split()
    if len(parts) != 3:
        return None
    return Watcher(parts[0], parts[1] == "running", parts[2])


def parse_restarts(rest: str) -> tuple[str, Restarts] | None:
    """`ID DOCKER_COUNT HEALTH_RESTARTS LAST_EPOCH CRASHES_BEFORE gave-up|ok`: Docker counts
    policy restarts since the last manual start, which each health restart is, so the
    crashes are those counted before each health restart plus Docker's count now."""
    parts = rest.split()
    if len(parts) != 6 or not all(p.isdigit() for p in parts[1:5]):
        return None
    cid, count, health, last, before, state = parts
    when = (datetime.fromtimestamp(int(last), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if int(health) else None)
    return cid, Restarts(crashes=int(count) + int(before), health=int(health),
                         last_health=when, gave_up=state == "gave-up")
