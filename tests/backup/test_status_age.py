"""`inv status` says how old the newest complete backup is and warns past 26 hours."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fabfile.backup import STALE_AFTER
from fabfile.tasks.deploy import backup_age_line
from tests.backup.conftest import ENV, BackupBed


def test_age_lines() -> None:
    assert backup_age_line(None, STALE_AFTER) == (
        True, "backups: no complete backup yet (run inv backup.create)")
    assert backup_age_line(timedelta(hours=3), STALE_AFTER) == (
        False, "backups: newest complete 3.0 h ago")
    warning, text = backup_age_line(timedelta(hours=27), STALE_AFTER)
    assert warning and "27 h old (over 26 h)" in text


@pytest.mark.testbed
def test_status_reports_the_newest_complete_backup(bed: BackupBed) -> None:
    before = bed.inv("status", f"--env={ENV}")
    assert before.returncode == 0, before.stderr
    assert "backups: no complete backup yet" in before.stdout
    assert bed.inv("backup.create", f"--env={ENV}").returncode == 0
    after = bed.inv("status", f"--env={ENV}")
    assert after.returncode == 0, after.stderr
    assert "backups: newest complete 0.0 h ago" in after.stdout
