"""The one loader of host scripts: libraries first, each once, from any package; every script
it loads parses in POSIX sh."""

from __future__ import annotations

import subprocess

import pytest

from fabfile import shell
from fabfile.backup.plan import SCRIPTS as BACKUP
from fabfile.cutover.steps import SCRIPTS as CUTOVER
from fabfile.deploy import scripts as deploy


def test_libraries_come_first_each_once() -> None:
    lock = shell.read("fabfile.deploy", "lock")
    lib = shell.read("fabfile.backup", "lib")
    restore = shell.read("fabfile.backup", "restore")
    body = shell.body("fabfile.backup", "restore", ["lib", "fabfile.deploy:lock", "lib"])
    assert body == "\n".join([lib, lock, restore])
    assert BACKUP.body("restore") == "\n".join([lib, lock, restore])
    assert deploy.body("facts").startswith(lock) and deploy.body("roll_up").startswith(
        shell.read("fabfile.deploy", "lib"))
    with pytest.raises(KeyError):
        BACKUP.body("nope")


def test_steps_and_shown() -> None:
    step = CUTOVER.step("t", "fetch", "/x/snapshot.db", timeout=5)
    assert step.argv == ("sh", "-c", CUTOVER.body("fetch"), "sh", "/x/snapshot.db")
    assert CUTOVER.shown(step.argv) == ["sh", "-c", "<fetch.sh>", "sh", "/x/snapshot.db"]


LOADED = {**{f"deploy/{n}": deploy.body(n) for n in deploy.NAMES},
          **{f"backup/{n}": BACKUP.body(n) for n in BACKUP.names},
          **{f"cutover/{n}": CUTOVER.body(n) for n in CUTOVER.names}}


@pytest.mark.parametrize("name", sorted(LOADED))
def test_every_loaded_script_parses_in_posix_sh(name: str) -> None:
    proc = subprocess.run(["sh", "-n", "-c", LOADED[name]], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
