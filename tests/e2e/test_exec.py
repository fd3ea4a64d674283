"""`inv exec` end to end: the real CLI over the test bed's sshd, commands in a one-off
container of the current release and in a running web container, with and without a
terminal; the exit code is the command's and the audit log names who ran what."""

from __future__ import annotations

import os
import pty
import select
import time
from collections.abc import Iterator

import pytest

from tests.deploy.stack import APP, Stack, output
from tests.helpers import INV, PROJECT_ROOT
from tests.support.docker import docker

pytestmark = pytest.mark.e2e


@pytest.fixture
def deployed(stack: Stack) -> Iterator[Stack]:
    assert stack.inv("setup").returncode == 0
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    yield stack


def oneoffs(stack: Stack) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}",
                  "--filter", "label=com.docker.compose.oneoff=True").split()


def run_in_terminal(stack: Stack, *args: str, keys: bytes, timeout: float = 90) -> tuple[int, str]:
    """`inv exec ARGS` on a pseudo-terminal of its own, typing `keys`: (exit code, screen)."""
    environ = dict(os.environ, NO_COLOR="1", TERM="dumb", DEPLOY_ENVIRONMENTS_DIR=str(
        stack.env_dir), E2E_DATABASE_URL="postgresql://app:e2e-secret-pw@db.example.com:5432/app"
        "?sslmode=require")
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes `inv`, its terminal the pty
        os.chdir(PROJECT_ROOT)
        os.execve(INV, [INV, "exec", "--env=e2e", *args], environ)  # noqa: S606 - argv, no shell
    screen = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            if not sent and b"one-off container" in screen:
                time.sleep(2)
                os.write(fd, keys)
                sent = True
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_exec_runs_in_the_release_with_its_env_file_and_returns_the_exit_code(
        deployed: Stack) -> None:
    stack = deployed
    script = 'echo "version=$APP_VERSION db=${DATABASE_URL##*@}"; test -t 0 || echo no-tty; exit 7'
    proc = stack.inv("exec", "--", "sh", "-c", script)
    assert proc.returncode == 7, output(proc)
    assert "version=v1 db=db.example.com:5432/app?sslmode=require" in proc.stdout
    assert "no-tty" in proc.stdout and "e2e-secret-pw" not in output(proc)
    assert "in a one-off container of release" in proc.stderr
    assert not oneoffs(stack)

    proc = stack.inv("exec", "--reuse", "--", "sh", "-c", "hostname; cat > /tmp/got; cat /tmp/got")
    assert proc.returncode == 0, output(proc)
    served_by = proc.stdout.split()[0]
    assert served_by in [c["id"][:12] for c in stack.containers()]

    entries = [a for a in stack.audit() if a["action"] == "exec"]
    assert len(entries) == 2 and all(a["result"] == "started" for a in entries)
    assert entries[0]["message"].endswith(f"in a one-off container: sh -c '{script}'")
    assert "in a running web container: sh -c" in entries[1]["message"]
    assert "@" in entries[0]["who"]
    status = stack.inv("status")
    assert "last:" in status.stdout and "exec" not in status.stdout.split("last:")[1]
    assert stack.images() == [f"{APP}:v1", f"{APP}:v1"]


def test_exec_interactive_gives_the_command_a_terminal(deployed: Stack) -> None:
    code, screen = run_in_terminal(deployed, "--interactive", "--", "sh",
                                   keys=b"test -t 0 && echo tty-$((6*7)); exit 3\r")
    assert code == 3, screen
    assert "tty-42" in screen
    assert not oneoffs(deployed)


def test_exec_refuses_what_it_cannot_run(deployed: Stack) -> None:
    stack = deployed
    proc = stack.inv("exec")
    assert proc.returncode == 1 and "error: no command to run: put it after `--`" in proc.stderr
    proc = stack.inv("exec", "--host=10.9.9.9", "--", "true")
    assert proc.returncode == 1 and "--host=10.9.9.9: not a host of e2e" in proc.stderr
    empty = stack.write_env("e2eempty", {"deploy": {"app_dir": str(stack.root / "host" / "none")}})
    proc = stack.inv("exec", "--", "true", env=empty)
    assert proc.returncode == 1, output(proc)
    assert "nothing is deployed on" in proc.stderr and "Traceback" not in output(proc)
    for c in stack.containers():
        docker("stop", "-t", "1", c["id"])
    proc = stack.inv("exec", "--reuse", "--", "true")
    assert proc.returncode == 1 and "no web container is running on" in proc.stderr
    assert len([a for a in stack.audit() if a["action"] == "exec"]) == 0
