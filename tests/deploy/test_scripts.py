"""The remote scripts that need no Docker (upload, finish, the lock, phases and their abort),
run for real with the local transport on a temporary app directory."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from fabfile.config import Host
from fabfile.deploy import facts, release, rollout, scripts
from fabfile.remote import LocalTransport
from fabfile.render import RenderedFile
from tests.deploy.factgen import config

TOKEN = "t0k3n"


def local() -> LocalTransport:
    return LocalTransport(Host(address="localhost", transport="local"))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "releases").mkdir(parents=True)
    return root


def take_lock(app_dir: Path, wait: int = 0, token: str = TOKEN) -> facts.Facts:
    cfg = config("unit", app_dir.parent, {"deploy": {"app_dir": str(app_dir)}})
    step = facts.gather_step(cfg, take_lock=True, lock_wait=wait,
                             holder_json=json.dumps({"who": "tester"}), token=token)
    return facts.parse(local().run(step).stdout)


def test_upload_unpacks_atomically_with_modes(app_dir: Path) -> None:
    files = [RenderedFile("compose.yml", "name: x\n"),
             RenderedFile("app.env", "K='v'\n", 0o600),
             RenderedFile("traefik/dynamic/dynamic.yml", "http: {}\n")]
    local().run(release.upload_step(str(app_dir), "20240101T000000Z-v1", files))
    rel = app_dir / "releases" / "20240101T000000Z-v1"
    assert (rel / "app.env").stat().st_mode & 0o777 == 0o600
    assert (rel / "compose.yml").stat().st_mode & 0o777 == 0o644
    assert (rel / "traefik/dynamic/dynamic.yml").read_text() == "http: {}\n"
    assert os.listdir(app_dir / "releases") == ["20240101T000000Z-v1"]


def test_lock_is_taken_once_and_reports_its_holder(app_dir: Path) -> None:
    first = take_lock(app_dir)
    assert first.lock == "taken" and (app_dir / "lock" / f"token.{TOKEN}").exists()
    started = time.monotonic()
    second = take_lock(app_dir, wait=1, token="other")
    assert second.lock == "held" and second.holder == {"who": "tester"}
    assert 0.4 <= time.monotonic() - started < 5


def test_lock_wait_gets_the_lock_when_it_is_released(app_dir: Path) -> None:
    take_lock(app_dir)
    threading.Timer(0.7, lambda: os.system(f"rm -rf {app_dir / 'lock'}")).start()  # noqa: S605
    assert take_lock(app_dir, wait=10, token="next").lock == "taken"


def finish(app_dir: Path, switch: str = "", audit: str = "{}", *prune: str, keep: str = "",
           token: str = TOKEN, wait: str = "0") -> dict[str, list[str]]:
    step = scripts.step("finish", "finish", str(app_dir), token, wait, switch, audit, "", keep,
                        *prune)
    return rollout.markers(local().probe(step).stdout)


def test_finish_switches_prunes_audits_and_unlocks(app_dir: Path) -> None:
    for rid in ("r1", "r2", "r3"):
        (app_dir / "releases" / rid).mkdir()
    (app_dir / "releases" / ".incoming-r4").mkdir()
    take_lock(app_dir)
    m = finish(app_dir, "r3", '{"result": "success"}', "r1")
    assert m.keys() >= {"switched", "pruned", "unlocked"}
    assert os.readlink(app_dir / "current") == "releases/r3"
    assert (app_dir / "releases" / "r3" / ".live").exists()
    assert sorted(os.listdir(app_dir / "releases")) == ["r2", "r3"]
    assert (app_dir / "audit.log").read_text() == '{"result": "success"}\n'
    assert not (app_dir / "lock").exists()


def test_finish_never_prunes_current_nor_takes_anothers_lock(app_dir: Path) -> None:
    (app_dir / "releases" / "r1").mkdir()
    os.symlink("releases/r1", app_dir / "current")
    take_lock(app_dir, token="someone-else")
    (app_dir / "releases" / "r2").mkdir()
    m = finish(app_dir, "", "{}", "r1", "../..")
    assert "lock-not-ours" in m and (app_dir / "lock").exists()
    assert (app_dir / "releases" / "r1").exists()
    m = finish(app_dir, "r2", "{}", "r1")
    assert "lock-not-ours" in m and "switched" not in m, "a run that lost its lock switches nothing"
    assert os.readlink(app_dir / "current") == "releases/r1"
    assert (app_dir / "audit.log").read_text() == "{}\n{}\n", "but its audit line is kept"


def test_an_orphaned_phase_is_stopped_before_the_lock_goes(app_dir: Path) -> None:
    take_lock(app_dir)
    body = ('trap \'echo "@interrupted"; exit 130\' TERM\n'
            'echo "@started"; sleep 30 & wait $!\n')
    step = scripts.script("test phase", scripts.body("phase"), str(app_dir / "lock"), TOKEN, "1",
                          "slow", body)
    runner = threading.Thread(target=lambda: local().probe(step), daemon=True)
    runner.start()
    deadline = time.monotonic() + 5
    while not (app_dir / "lock" / "phase.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    m = finish(app_dir, wait="10")
    assert m["aborting"] == ["slow"] and "unlocked" in m
    assert any("@interrupted" in line for line in m.get("phase-log", []))


def test_a_phase_refuses_to_start_without_the_lock(app_dir: Path) -> None:
    lock = scripts.PhaseLock(str(app_dir / "lock"), TOKEN, 1)
    step = scripts.phase("p", lock, "migrate", "x", "web", "true")
    result = local().probe(step)
    assert result.exit_code == 75 and "@error lock-lost" in result.stdout
    take_lock(app_dir, token="another-run")
    result = local().probe(step)
    assert result.exit_code == 75 and "@error lock-lost" in result.stdout, \
        "nor under a lock another run took over"


def test_lock_release_script_refuses_while_a_phase_runs(app_dir: Path) -> None:
    take_lock(app_dir)
    (app_dir / "lock" / "phase.pid").write_text(f"{os.getpid()} roll_up\n")
    result = local().probe(scripts.step("release", "lock_release", str(app_dir), "{}"))
    assert result.exit_code == 3 and "@phase-running roll_up" in result.stdout
    (app_dir / "lock" / "phase.pid").unlink()
    result = local().probe(scripts.step("release", "lock_release", str(app_dir), '{"a": 1}'))
    assert result.ok and not (app_dir / "lock").exists()
    assert (app_dir / "audit.log").read_text() == '{"a": 1}\n'
