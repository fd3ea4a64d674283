"""Test-side handles on the self-healing watcher (`fabfile/heal`): stop the watchers a test
started (by the pid in their app directory, never by name), and make the fake app hang or
crash from inside its container."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from tests.support.docker import docker


def watcher_pid(app_dir: Path) -> int | None:
    """The pid of the watcher of `app_dir` when it runs (checked against its command line)."""
    try:
        pid = int((app_dir / "heal" / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    return pid if str(app_dir / "heal" / "watch.sh").encode() in cmdline else None


def stop_watcher(app_dir: Path, timeout: float = 5.0) -> None:
    """Stop the watcher of `app_dir` and its children (its process group), if it runs."""
    pid = watcher_pid(app_dir)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while watcher_pid(app_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


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
