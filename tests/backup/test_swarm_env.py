"""Backups of a `deploy.engine: swarm` environment run on its first manager, wherever it is
listed: that is where the deploy lock lives and where the database client reaches the
managed database. The worker listed first is an address nobody answers at: it must never be
contacted."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml

from tests.backup.conftest import ENV, BackupBed, write_yaml

pytestmark = pytest.mark.testbed


def test_backups_of_a_swarm_environment_run_on_its_first_manager(
        make_bed: Callable[..., BackupBed], roster_db: str, bucket: str) -> None:
    bed = make_bed(roster_db, bucket)
    path = bed.root / f"{ENV}.yaml"
    data = yaml.safe_load(path.read_text())
    manager = {**data["hosts"][0], "role": "manager", "advertise_address": "127.0.0.1"}
    worker = {"address": "192.0.2.10", "role": "worker", "connect_timeout": 1}
    data.update(hosts=[worker, manager], deploy={"engine": "swarm"},
                app={"command": ["/app/serve"]})
    write_yaml(path, data)

    created = bed.inv("backup.create", f"--env={ENV}", "--label=swarm")
    assert created.returncode == 0, created.stdout + created.stderr
    [cached] = list(bed.cache_dir.iterdir())
    listed = bed.inv("backup.list", f"--env={ENV}", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["status"], row["where"], row["label"]) == ("complete", "both", "swarm")
    assert cached.name.startswith(row["id"])

    live = bed.inv("backup.restore", f"--env={ENV}", "--date=latest", "--yes")
    assert live.returncode == 1 and "Traceback" not in live.stderr
    assert "a restore over the live database of a swarm environment is not done" in live.stderr
