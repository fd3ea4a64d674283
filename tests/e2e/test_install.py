"""`inv setup --install` on a fresh Debian 13 VPS with no Docker (`tests/support/vps.py`):
first a distribution whose Compose is v1 (Debian 12's archive): refused, nothing installed;
then Debian 13's own packages: Docker Engine and the Compose v2 plugin installed, the
deploy user in the docker group, the service started, the versions checked on a fresh
login; then again: nothing to change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.stack import APP, output
from tests.helpers import run_inv
from tests.support import vps as vps_support

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vps() -> Iterator[vps_support.Vps]:
    host = vps_support.start()
    try:
        yield host
    finally:
        host.stop()


def environment(tmp_path: Path, host: vps_support.Vps) -> Path:
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "fresh.yaml").write_text(yaml.safe_dump({
        "project": "fresh",
        "app": {"name": "web", "image": APP, "tag": "v1"},
        "hosts": [{"address": host.ssh.address, "port": 22, "user": host.ssh.user,
                   "key_file": str(host.ssh.key_file), "known_hosts": str(host.ssh.known_hosts)}],
        "deploy": {"app_dir": "/home/deploy/app", "network": "fresh-net"},
        "traefik": {"enabled": False, "acme_email": "ops@example.com"},
        "database": {"url": {"secret": "FRESH_DATABASE_URL"}},
    }))
    return envs


def test_setup_install_on_a_fresh_host(vps: vps_support.Vps, tmp_path: Path) -> None:
    envs = environment(tmp_path, vps)

    def setup(*args: str) -> tuple[int, str]:
        proc = run_inv("setup", "--env=fresh", *args, env_dir=envs, timeout=900)
        return proc.returncode, output(proc)

    code, text = setup()
    assert code == 1, text
    assert "Docker is not installed on deploy@" in text and "apt-get install docker.io" in text

    vps.use_suite("bookworm")
    code, text = setup("--install")
    assert code == 1, text
    assert "nothing was installed on deploy@" in text
    assert "has no Compose v2 plugin of 2.20 or newer (apt offers: docker-compose=1.29" in text
    assert "Fix: add Docker's own apt repository" in text and "Traceback" not in text
    assert vps.sh("command -v dockerd || command -v docker").returncode != 0

    vps.use_suite("trixie")
    code, text = setup("--install")
    assert code == 0, text
    for change in ("installed docker.io 26.", "installed docker-cli 26.",
                   "installed docker-compose 2.", "added deploy to the docker group",
                   "started docker (systemd)", "created /home/deploy/app",
                   "created network fresh-net"):
        assert change in text, text
    assert "Docker 26.1" in text and "Compose 2.26" in text
    assert "docker" in vps.sh("id -nG deploy").stdout.split()
    calls = (vps.root / "var/log/systemctl.log").read_text().splitlines()
    assert "systemctl is-enabled --quiet docker" in calls
    assert "systemctl start docker" in calls
    assert (vps.root / "etc/systemd/system/multi-user.target.wants/docker.service").is_symlink()

    code, text = setup("--install")
    assert code == 0, text
    assert "already set up (nothing to do)" in text and "installed" not in text
    assert "Docker 26.1" in text
