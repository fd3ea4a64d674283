"""Test-side handles on the self-healing watcher (`fabfile/heal`): remove the watchers a
test installed (the real `install.sh remove`: their unit or crontab line too; then by the pid
in their app directory, never by name), make the fake app hang or crash from inside its
container, and time how it comes back (`recover`, shared by the e2e tests and
`benchmarks/bench_heal.py`)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fabfile.config import Host
from fabfile.heal.plan import remove_step
from fabfile.remote import LocalTransport
from tests.support.docker import docker
from tests.support.front import Front


def _is_watcher(pid: int, app_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return str(app_dir / "heal" / "watch.sh").encode() in cmdline


def watcher_pid(app_dir: Path) -> int | None:
    """The pid of the watcher of `app_dir` when it runs (checked against its command line)."""
    try:
        pid = int((app_dir / "heal" / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_watcher(pid, app_dir) else None


def stop_watcher(app_dir: Path, timeout: float = 5.0) -> None:
    """Remove the watcher of `app_dir` (this machine is the test bed's host); make sure its
    process group is gone."""
    pid = watcher_pid(app_dir)
    if (app_dir / "heal").is_dir():
        LocalTransport(Host(address="localhost", transport="local")).probe(
            remove_step(str(app_dir)))
    deadline = time.monotonic() + timeout
    while pid is not None and _is_watcher(pid, app_dir):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def stop_watchers_under(root: Path) -> None:
    """Stop every watcher whose app directory lies under `root` (a session's temp dirs)."""
    for pid_file in root.glob("**/heal/pid"):
        stop_watcher(pid_file.parent.parent)


def hang(container: str) -> None:
    """Stop the app's listener without ending PID 1: the container keeps running, `/health`
    stops answering (connections wait in the backlog), as a deadlocked server does."""
    docker("exec", container, "killall", "-STOP", "nc")


def crash(container: str) -> None:
    """Kill the app's listener: PID 1 then exits non-zero and Docker's policy restarts it
    (the `exec` itself may end with the container, so its status is not checked)."""
    docker("exec", container, "killall", "-KILL", "nc", check=False)


def started_at(cid: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", cid)


def state(cid: str) -> str:
    """`running healthy`, `running unhealthy`, `restarting starting`, ..."""
    return docker("inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", cid)


def name_of(cid: str) -> str:
    return docker("inspect", "-f", "{{.Name}}", cid).lstrip("/")


def wait(predicate: Callable[[], object], timeout: float, what: str,
         step: float = 0.1) -> float:
    """Poll until `predicate()` holds; returns the monotonic time it did (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(step)
    return time.monotonic()


@dataclass(frozen=True)
class Recovery:
    """One broken container's way back, as monotonic times: broken, restarted (a new start),
    healthy again, dropped from the proxy's table, routed again (capacity back)."""

    broken: float
    restarted: float
    healthy: float
    left: float
    back: float

    def after(self, at: float) -> float:
        return at - self.broken


def recover(front: Front, domain: str, cid: str, breaks: Callable[[str], None],
            timeout: float = 45.0) -> Recovery:
    """Break `cid` with `breaks` (`hang`, `crash`) and wait until it runs again in a new
    start, healthy and routed by `front`; TimeoutError when it does not within `timeout`."""
    name, before = name_of(cid), started_at(cid)
    broken = time.monotonic()
    breaks(cid)
    restarted = wait(lambda: started_at(cid) != before, timeout, f"{name} restarted")
    healthy = wait(lambda: state(cid) == "running healthy",
                   timeout - (restarted - broken), f"{name} healthy again")
    front.wait_for(lambda t: name in [s.container_name for s in t.servers_for(domain)],
                   timeout=10)
    left = next(r.at for r in front.refreshes_since(broken) if name not in r.backends)
    back = next(r.at for r in front.refreshes_since(left) if name in r.backends)
    return Recovery(broken, restarted, healthy, left, back)
