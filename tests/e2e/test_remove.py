"""`inv remove` end to end on the test bed's sshd host: it asks, holds the lock, takes the
app's containers, networks and releases away, keeps acme.json, the backup cache and the
volumes (unless --purge) and the audit log, and can run again."""

from __future__ import annotations

import pytest

from tests.deploy.stack import Stack, output
from tests.support.docker import docker

pytestmark = pytest.mark.e2e


def project_things(stack: Stack) -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={stack.project}"
    return {"containers": docker("ps", "-aq", "--filter", label).split(),
            "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
            "networks": docker("network", "ls", "-q", "--filter", f"name=^{stack.network}$")
            .split()}


def test_remove_keeps_what_matters_then_purge_takes_it(stack: Stack) -> None:
    cache = stack.root / "host" / "backups"
    stack.write_env(overrides={"backup": {"bucket": "roster-e2e", "cache_dir": str(cache)}})
    assert stack.inv("setup").returncode == 0
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    cache.mkdir(parents=True)
    (cache / "20240101T000000Z.dump.zst").write_bytes(b"dump")
    docker("volume", "create", "--label", f"com.docker.compose.project={stack.project}",
           f"{stack.project}_data")
    acme = stack.app_dir / "acme.json"
    things = project_things(stack)
    assert len(things["containers"]) == 2 and things["volumes"] and things["networks"]

    proc = stack.inv("remove")
    assert proc.returncode == 2, output(proc)
    assert "needs confirmation and there is no terminal to ask on: pass --yes" in proc.stderr
    assert project_things(stack) == things and stack.current()

    (stack.app_dir / "lock").mkdir()
    proc = stack.inv("remove", "--yes")
    assert proc.returncode == 75 and "is locked by" in proc.stderr, output(proc)
    (stack.app_dir / "lock").rmdir()
    assert project_things(stack) == things

    proc = stack.inv("remove", "--yes")
    assert proc.returncode == 0, output(proc)
    assert "stop and remove 2 container(s)" in proc.stdout and "removed containers 2" in \
        proc.stdout
    assert "removed the self-healing watcher" in proc.stdout
    assert not (stack.app_dir / "heal").exists()
    left = project_things(stack)
    assert left["containers"] == [] and left["networks"] == []
    assert left["volumes"] == things["volumes"]
    assert not (stack.app_dir / "releases").exists() and stack.current() is None
    assert acme.exists() and (cache / "20240101T000000Z.dump.zst").exists()
    assert not stack.locked()
    last = stack.audit()[-1]
    assert (last["action"], last["result"]) == ("remove", "success")
    assert "kept acme.json" in last["message"]

    proc = stack.inv("remove", "--yes", "--purge")
    assert proc.returncode == 0, output(proc)
    assert project_things(stack)["volumes"] == []
    assert not acme.exists() and not cache.exists()
    assert (stack.app_dir / "audit.log").exists() and stack.audit()[-1]["message"] == "purged"

    assert stack.inv("setup").returncode == 0
    proc = stack.inv("deploy", "--yes")
    assert proc.returncode == 0, output(proc)
    assert len(stack.containers()) == 2
