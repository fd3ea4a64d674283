"""The Sentry DSN, when set, reaches the app's environment file and nowhere else: not another
rendered file, not anything a task prints, not a Slack message."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from fabfile.config import load_config
from fabfile.render import render_release
from tests.helpers import DUMMY_SECRETS, env_tree, run_inv
from tests.support.docker import DockerEngine, docker
from tests.support.sshd import SshHost

DSN = "https://5f0c1e2d3b4a9e8d@o123.ingest.sentry.example/4567"
ENVS = ["local", "staging", "prod"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The shipped environments, each with a Sentry DSN (local has none by default)."""
    return env_tree(tmp_path, {"local": {"app": {"sentry_dsn": {"secret": "SENTRY_DSN"}}}})


def secrets() -> dict[str, str]:
    return {**DUMMY_SECRETS, "SENTRY_DSN": DSN}


@pytest.mark.parametrize("env", ENVS)
def test_only_the_app_env_file_holds_the_dsn(root: Path, env: str) -> None:
    files = render_release(load_config(env, root=root, environ=secrets(), dotenv_dir=root))
    holders = [f for f in files if DSN in f.content]
    assert [f.path for f in holders] == ["app.env"]
    assert holders[0].mode == 0o600
    assert f"SENTRY_DSN='{DSN}'\n" in holders[0].content


def test_without_a_dsn_the_app_env_file_has_no_sentry_line(tmp_path: Path) -> None:
    root = env_tree(tmp_path, {"prod": {"app": {"sentry_dsn": None}}})
    files = render_release(load_config("prod", root=root, environ=DUMMY_SECRETS))
    assert not any("SENTRY_DSN" in f.content for f in files)


@pytest.mark.parametrize("env", ENVS)
def test_tasks_never_print_it_and_render_writes_it_once(root: Path, tmp_path: Path,
                                                        env: str) -> None:
    out = tmp_path / "out"
    runs = [
        run_inv("render", f"--env={env}", f"--out={out}", env_dir=root, extra_env=secrets()),
        run_inv("config.show", f"--env={env}", env_dir=root, extra_env=secrets()),
        run_inv("config.show", f"--env={env}", "--json", env_dir=root, extra_env=secrets()),
        run_inv("notify.send", f"--env={env}", f"--message=DSN is {DSN}", env_dir=root,
                extra_env={**secrets(), "SLACK_WEBHOOK_URL": ""}),
    ]
    for proc in runs:
        assert proc.returncode == 0, proc.args
        assert DSN not in proc.stdout + proc.stderr, proc.args
        assert "5f0c1e2d3b4a9e8d" not in proc.stdout + proc.stderr, proc.args
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written, "render wrote nothing"
    holders = [str(p.relative_to(out)) for p in written if DSN in p.read_text()]
    assert holders == ["app.env"]
    assert os.stat(out / "app.env").st_mode & 0o777 == 0o600


@pytest.mark.testbed
def test_setup_plan_and_dry_run_against_a_host_never_print_it(
        tmp_path: Path, ssh_host: SshHost, docker_engine: DockerEngine) -> None:
    """`inv setup`, `inv plan` and `inv deploy --dry-run` against a real host show the
    release's files (diffs of the public ones): the DSN stays out of all of them."""
    network = f"sentry-{uuid.uuid4().hex[:10]}"
    root = env_tree(tmp_path, {"staging": {
        "hosts": [{"address": ssh_host.address, "port": ssh_host.port, "user": ssh_host.user,
                   "key_file": str(ssh_host.key_file),
                   "known_hosts": str(ssh_host.known_hosts)}],
        "deploy": {"app_dir": str(tmp_path / "srv" / "app"), "network": network},
        "app": {"image": "shipyard-test/app"}, "registry": None,
    }})
    try:
        outputs = []
        for args in (("setup", "--env=staging"), ("plan", "--env=staging"),
                     ("deploy", "--env=staging", "--dry-run")):
            proc = run_inv(*args, env_dir=root, extra_env=secrets(), timeout=120)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
            outputs.append(proc.stdout + proc.stderr)
    finally:
        docker("network", "rm", network, check=False)
    assert all("app.env" in output for output in outputs[1:])
    for output in outputs:
        assert DSN not in output and "5f0c1e2d3b4a9e8d" not in output
