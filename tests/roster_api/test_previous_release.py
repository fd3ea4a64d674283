"""The previous release (head 0001), made from this tree as the test bed makes `roster:v1`:
it has nothing of revision 0002 and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.images import (
    PREVIOUS_RELEASE_MARK,
    ROSTER_BUILD_INPUTS,
    roster_release_files,
    write_files,
)

WITH_TESTS = (*ROSTER_BUILD_INPUTS, "tests")


def test_the_previous_release_has_nothing_of_0002() -> None:
    current = roster_release_files("v2", WITH_TESTS)
    previous = roster_release_files("v1", WITH_TESTS)
    dropped = sorted(set(current) - set(previous))
    assert dropped == ["migrations/versions/0002_people_phone.py", "tests/test_roster_phone.py"]
    for name, data in previous.items():
        text = data.decode(errors="replace")
        assert PREVIOUS_RELEASE_MARK not in text, name
        assert "phone" not in text.lower() or name.endswith(".lock"), name
    assert previous["Dockerfile"] == current["Dockerfile"]
    assert previous["requirements.lock"] == current["requirements.lock"]


def test_the_previous_release_passes_its_own_tests(tmp_path: Path) -> None:
    tree = write_files(roster_release_files("v1", WITH_TESTS), tmp_path / "roster-v1")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
         "--rootdir", str(tree), "tests"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary
