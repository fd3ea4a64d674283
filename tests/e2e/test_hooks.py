"""Hooks end to end: executables in the project's `hooks/` that write down what they
received, around real deploys, a rollback and a build on the test bed. A failing pre-hook
stops the task before any host changes; a failing post-hook is reported and undoes
nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fabfile.hooks import NAMES
from tests.deploy.stack import APP, Stack, output
from tests.support.docker import docker

pytestmark = pytest.mark.e2e

HOOK = """#!/bin/sh
# Writes the SHIPYARD_* variables it received; fails when a file fail-<its name> exists.
here=$(dirname "$0")
env | grep '^SHIPYARD_' | sort > "$here/../received/$SHIPYARD_HOOK"
echo "hook $SHIPYARD_HOOK ran"
[ ! -e "$here/fail-$SHIPYARD_HOOK" ] || exit 3
"""


@pytest.fixture
def hooked(stack: Stack) -> Iterator[Stack]:
    hooks = stack.root / "hooks"
    hooks.mkdir()
    (stack.root / "received").mkdir()
    for name in NAMES:
        (hooks / name).write_text(HOOK)
        (hooks / name).chmod(0o755)
    assert stack.inv("setup").returncode == 0
    yield stack


def received(stack: Stack, name: str) -> dict[str, str]:
    path = stack.root / "received" / name
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def clear(stack: Stack) -> None:
    for path in (stack.root / "received").iterdir():
        path.unlink()


def test_deploy_and_rollback_hooks_receive_what_happened(hooked: Stack) -> None:
    stack = hooked
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    first = stack.current()
    proc = stack.inv("deploy", "--yes", "--version=v2")
    assert proc.returncode == 0, output(proc)
    assert "hook pre-deploy ran" in proc.stdout and "hook post-deploy ran" in proc.stdout
    pre, post = received(stack, "pre-deploy"), received(stack, "post-deploy")
    assert pre == {
        "SHIPYARD_HOOK": "pre-deploy", "SHIPYARD_TASK": "deploy", "SHIPYARD_ENV": "e2e",
        "SHIPYARD_VERSION": "v2", "SHIPYARD_IMAGE": f"{APP}:v2",
        "SHIPYARD_RELEASE": stack.current(), "SHIPYARD_HOSTS": stack.ssh.address,
        "SHIPYARD_PERFORMER": pre["SHIPYARD_PERFORMER"],
        "SHIPYARD_RECORDED_AT": pre["SHIPYARD_RECORDED_AT"]}
    assert "@" in pre["SHIPYARD_PERFORMER"]
    assert post == {**pre, "SHIPYARD_HOOK": "post-deploy", "SHIPYARD_OUTCOME": "success",
                    "SHIPYARD_RUNTIME": post["SHIPYARD_RUNTIME"], "SHIPYARD_MESSAGE": ""}

    clear(stack)
    (stack.root / "hooks" / "fail-post-rollback").touch()
    proc = stack.inv("rollback", "--yes")
    assert proc.returncode == 0, output(proc)
    assert "the post-rollback hook failed (exit 3); the rollback itself succeeded" in proc.stdout
    assert stack.current() == first and stack.all_serving(f"{APP}:v1")
    assert received(stack, "pre-rollback")["SHIPYARD_RELEASE"] == first
    assert received(stack, "pre-rollback")["SHIPYARD_VERSION"] == "v1"
    assert received(stack, "post-rollback")["SHIPYARD_OUTCOME"] == "success"

    clear(stack)
    stack.write_env(overrides={"app": {"env": {"MIGRATE_EXIT": "4"}}})
    proc = stack.inv("deploy", "--yes", "--version=v2")
    assert proc.returncode == 1, output(proc)
    post = received(stack, "post-deploy")
    assert post["SHIPYARD_OUTCOME"] == "failed"
    assert "the migration `/app/migrate` failed" in post["SHIPYARD_MESSAGE"]


def test_a_failing_pre_hook_stops_before_any_host_changes(hooked: Stack) -> None:
    stack = hooked
    assert stack.inv("deploy", "--yes").returncode == 0
    before = (stack.current(), stack.releases(), sorted(c["id"] for c in stack.containers()))
    clear(stack)
    (stack.root / "hooks" / "fail-pre-deploy").touch()
    proc = stack.inv("deploy", "--yes", "--version=v2")
    assert proc.returncode == 1, output(proc)
    assert ("error: the pre-deploy hook failed (exit 3), so the deploy stopped before changing "
            "anything") in proc.stderr
    assert "Traceback" not in output(proc)
    assert (stack.current(), stack.releases(),
            sorted(c["id"] for c in stack.containers())) == before
    assert not stack.locked() and not received(stack, "post-deploy")
    assert stack.audit()[-1]["result"] == "cancelled"

    (stack.root / "hooks" / "pre-deploy").chmod(0o644)
    proc = stack.inv("deploy", "--yes", "--version=v2")
    assert proc.returncode == 1
    assert "pre-deploy hook" in proc.stderr and "is not an executable file: `chmod +x" in \
        proc.stderr
    assert stack.current() == before[0]


def test_build_hooks(hooked: Stack) -> None:
    stack = hooked
    context = stack.root / "app"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {APP}:v1\nLABEL org.shipyard.hooktest=1\n")
    stack.write_env(overrides={"app": {"build": {"context": "app"}}})
    tag = f"hooks-{uuid.uuid4().hex[:8]}"
    try:
        proc = stack.inv("build", "--no-push", f"--version={tag}")
        assert proc.returncode == 0, output(proc)
        assert received(stack, "pre-build")["SHIPYARD_VERSION"] == tag
        assert received(stack, "post-build")["SHIPYARD_OUTCOME"] == "success"
        assert received(stack, "post-build")["SHIPYARD_HOSTS"] == ""
        (stack.root / "hooks" / "fail-pre-build").touch()
        clear(stack)
        proc = stack.inv("build", "--no-push", f"--version={tag}-2")
        assert proc.returncode == 1 and "the pre-build hook failed (exit 3)" in proc.stderr
        assert not received(stack, "post-build")
        assert not docker("image", "ls", "-q", f"{APP}:{tag}-2")
    finally:
        docker("image", "rm", f"{APP}:{tag}", check=False)
