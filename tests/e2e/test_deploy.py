"""`inv setup/deploy/plan/rollback/status/logs` end to end: the real CLI, over real SSH (the
test bed's sshd), against the real Docker Engine and Compose v2, with the fake app's images.

Each test gets its own Compose project, network and app directory (`tests/deploy/stack.py`).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from tests.deploy.stack import APP, DB_URL, Stack, output
from tests.support.docker import docker

pytestmark = pytest.mark.e2e


def deployed(stack: Stack, *args: str, env: str = "e2e") -> str:
    """Run `inv deploy --yes ARGS`, assert it succeeded, return what it printed."""
    proc = stack.inv("deploy", "--yes", *args, env=env)
    assert proc.returncode == 0, output(proc)
    return output(proc)


def commands(text: str) -> int:
    """The `commands` column (SSH commands on the host) of a run's summary table."""
    match = re.search(r"│ root@[^│]+│ \S+\s+│[^│]*│[^│]*│[^│]*│ (\d+)\s+│", text)
    assert match, text
    return int(match.group(1))


def test_setup_is_idempotent(stack: Stack) -> None:
    first = stack.inv("setup")
    assert first.returncode == 0, output(first)
    assert "created" in first.stdout and f"network {stack.network}" in first.stdout
    for sub in ("releases", "traefik/dynamic"):
        assert (stack.app_dir / sub).is_dir()
    assert stat.S_IMODE((stack.app_dir / "acme.json").stat().st_mode) == 0o600
    assert docker("network", "inspect", "-f", "{{.Name}}", stack.network) == stack.network
    again = stack.inv("setup")
    assert again.returncode == 0, output(again)
    assert "already set up (nothing to do)" in again.stdout


def test_deploy_before_setup_says_to_run_setup(stack: Stack) -> None:
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 1
    assert f"{stack.app_dir} does not exist on root@127.0.0.1:{stack.ssh.port}: run " \
           "`inv setup --env=e2e` first" in proc.stderr


@pytest.mark.parametrize(("fake", "message"), [
    ('version) echo 20.10.24 ;; compose) echo "docker: \'compose\' is not a docker command." >&2;'
     " exit 1 ;;", "Docker Compose v2 (`docker compose`) is missing on local: install the "
     "Compose v2 plugin"),
    ("version) echo 19.03.8 ;; compose) echo 2.26.1 ;;",
     "Docker Engine 19.03.8 on local is too old (need 20.10 or newer)"),
    ("version) echo 24.0.7 ;; compose) echo 2.12.2 ;;",
     "Docker Compose 2.12.2 on local is too old (need 2.20 or newer"),
], ids=["compose-missing", "engine-too-old", "compose-too-old"])
def test_setup_checks_docker_and_compose(stack: Stack, tmp_path: Path, fake: str,
                                         message: str) -> None:
    """With the local transport, a `docker` on PATH that is missing Compose or too old."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\ncase "$1" in\n  {fake}\n  *) exec /usr/bin/docker "$@" ;;\n'
                      "esac\n")
    script.chmod(0o755)
    env = stack.write_env("fake", {"hosts": [{"address": "localhost", "transport": "local"}]})
    proc = stack.inv("setup", env=env, extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 1, output(proc)
    assert message in proc.stderr
    assert "Traceback" not in output(proc)


def test_first_no_change_and_rolling_deploys(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    first = deployed(stack)
    assert "web: start 2 new containers, wait until healthy" in first
    assert stack.all_serving(f"{APP}:v1")
    v1_release = stack.current()
    assert v1_release and v1_release.endswith("-v1") and not stack.locked()
    assert commands(first) <= 15

    same = deployed(stack)
    assert "nothing to change" in same
    assert commands(same) <= 4
    assert stack.current() == v1_release

    before = {c["id"] for c in stack.containers()}
    rolled = deployed(stack, "--version=v2")
    assert "web: start 2 new containers beside 2 old, wait until healthy" in rolled
    assert "web: drain, stop 2 old containers" in rolled
    assert commands(rolled) <= 15
    assert stack.all_serving(f"{APP}:v2")
    assert not before & {c["id"] for c in stack.containers()}
    assert stack.current() != v1_release and stack.current().endswith("-v2")  # type: ignore[union-attr]
    results = [(a["action"], a["result"], a["version"]) for a in stack.audit()]
    assert results == [("deploy", "success", "v1"), ("deploy", "no-change", "v1"),
                       ("deploy", "success", "v2")]
    release_dir = stack.app_dir / "releases" / stack.current()  # type: ignore[operator]
    assert stat.S_IMODE((release_dir / "app.env").stat().st_mode) == 0o600
    assert DB_URL not in rolled


def test_releases_are_pruned_to_keep_releases(stack: Stack) -> None:
    env = stack.write_env("keep2", {"deploy": {"keep_releases": 2}})
    assert stack.inv("setup", env=env).returncode == 0
    for version in ("v1", "v2", "v1"):
        deployed(stack, f"--version={version}", "--skip-migrations", env=env)
    releases = stack.releases()
    assert len(releases) == 2 and stack.current() == releases[-1]
    assert releases[0].endswith("-v2")


def test_dry_run_changes_nothing(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    deployed(stack)
    before = (sorted(c["id"] for c in stack.containers()), stack.releases(), stack.audit())
    proc = stack.inv("deploy", "--version=v2", "--dry-run")
    assert proc.returncode == 0, output(proc)
    assert "dry run: nothing was changed" in proc.stdout
    assert "web: drain, stop 2 old containers" in proc.stdout
    assert (sorted(c["id"] for c in stack.containers()), stack.releases(),
            stack.audit()) == before
    assert not stack.locked()


def test_plan_shows_file_diffs_key_names_image_and_steps(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    deployed(stack)
    proc = stack.inv("plan", "--version=v2")
    assert proc.returncode == 0, output(proc)
    text = proc.stdout
    assert f'-    image: "{APP}:v1"' in text and f'+    image: "{APP}:v2"' in text
    assert "app.env changed (keys: ~APP_VERSION)" in text
    assert f"image: {APP}:v1 -> {APP}:v2" in text
    assert "1. upload release" in text and "migrate: /app/migrate" in text
    assert "e2e-secret-pw" not in output(proc)
    data = json.loads(stack.inv("plan", "--version=v2", "--json").stdout)
    assert [s["kind"] for s in data[0]["steps"]] == ["upload", "migrate", "roll_up",
                                                      "roll_drain"]


def test_status_and_logs(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    nothing = stack.inv("logs")
    assert nothing.returncode == 1 and "nothing is deployed" in nothing.stderr
    deployed(stack)
    proc = stack.inv("status")
    assert proc.returncode == 0, output(proc)
    assert f"* {stack.current()}" in proc.stdout
    assert proc.stdout.count("healthy") >= 2 and f"{APP}:v1" in proc.stdout
    assert "lock: free" in proc.stdout
    assert re.search(r"last: \S+ deploy v1 success by \S+", proc.stdout)
    logs = stack.inv("logs", "--service=web", "--tail=5")
    assert logs.returncode == 0, output(logs)
    assert "listening on 8000" in logs.stdout


def test_rollback_to_previous_and_to_a_named_release(stack: Stack) -> None:
    assert stack.inv("setup").returncode == 0
    deployed(stack)
    v1 = stack.current()
    deployed(stack, "--version=v2")
    v2 = stack.current()
    back = stack.inv("rollback", "--yes")
    assert back.returncode == 0, output(back)
    assert stack.current() == v1 and stack.all_serving(f"{APP}:v1")
    forward = stack.inv("rollback", "--yes", "--to=v2")
    assert forward.returncode == 0, output(forward)
    assert stack.current() == v2 and stack.all_serving(f"{APP}:v2")
    assert [a["action"] for a in stack.audit()][-2:] == ["rollback", "rollback"]
    unknown = stack.inv("rollback", "--yes", "--to=v9")
    assert unknown.returncode == 1 and "no release 'v9'" in unknown.stderr
    assert not stack.locked()


def test_confirmation_without_a_terminal_needs_yes(stack: Stack) -> None:
    env = stack.write_env("guarded", {"deploy": {"confirm": True}})
    assert stack.inv("setup", env=env).returncode == 0
    proc = stack.inv("deploy", env=env)
    assert proc.returncode == 2
    assert "needs confirmation (deploy.confirm)" in proc.stderr and "pass --yes" in proc.stderr
    assert stack.containers() == [] and not stack.locked()
    deployed(stack, env=env)
