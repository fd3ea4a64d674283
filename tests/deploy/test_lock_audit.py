"""Lock holder details and audit lines: pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fabfile.deploy import audit, lock


def test_holder_json_names_who_when_what_but_not_the_token() -> None:
    holder = lock.new_holder("deploy", "v2", now=datetime(2024, 5, 1, tzinfo=UTC))
    data = json.loads(holder.to_json())
    assert data["when"] == "2024-05-01T00:00:00Z" and data["version"] == "v2"
    assert data["command"] == "deploy" and data["pid"] > 0 and "@" in data["who"]
    assert "token" not in data and len(holder.token) == 16


def test_held_error_says_who_and_how_to_proceed() -> None:
    err = lock.held_error("deploy@vps1:22", "prod", {"who": "bob@ci", "when": "T",
                                                      "command": "deploy", "version": "v9",
                                                      "pid": 7}, 30)
    assert err.code == 75
    assert "deploy@vps1:22 is locked by bob@ci since T (deploy of v9, pid 7) after waiting 30s" \
        in err.message
    assert "--lock-wait=SECONDS" in err.message
    assert "inv lock.release --env=prod --yes" in err.message


def test_describe_copes_with_a_missing_holder_file() -> None:
    assert "unknown holder" in lock.describe(None)


def test_audit_record_is_one_json_line_without_secrets() -> None:
    from fabfile.config import Secret

    Secret("X", "hunter2-secret")
    line = audit.record(action="deploy", result="failed", env="prod", who="a@b", version="v2",
                        message="boom with hunter2-secret\ninside",
                        now=datetime(2024, 5, 1, tzinfo=UTC))
    assert "\n" not in line and "hunter2-secret" not in line
    data = json.loads(line)
    assert data["result"] == "failed" and data["time"] == "2024-05-01T00:00:00Z"
    assert audit.summary(data).startswith("2024-05-01T00:00:00Z deploy v2 failed by a@b")


def test_a_stale_lock_says_its_run_died_and_how_deploy_takes_it_over() -> None:
    life = lock.Liveness(age=95, stale=True, client="bob@ci pid 7 from 198.51.100.7",
                         phase="exited roll_up pid 99 on vps1")
    err = lock.held_error("deploy@vps1:22", "prod", {"who": "bob@ci", "command": "deploy",
                                                     "version": "v9", "pid": 7}, 0, life, 60)
    assert err.code == 75
    assert "a run that died: no heartbeat for 95s (deploy.lock_stale_after: 60s)" in err.message
    assert "`inv deploy --env=prod --lock-wait=SECONDS` takes such a lock over" in err.message
    assert life.describe(60) == ("no heartbeat for 95s (over 60s), no phase running (client "
                                 "bob@ci pid 7 from 198.51.100.7; phase exited roll_up pid 99 "
                                 "on vps1)")
    assert lock.Liveness(age=2).describe(60) == "last heartbeat 2s ago"


def test_what_a_takeover_says() -> None:
    took = lock.TakenOver({"who": "bob@ci", "when": "T", "command": "deploy", "version": "v9",
                           "pid": 7}, 75)
    assert took.describe() == ("took over the stale lock of bob@ci since T (deploy of v9, pid 7)"
                               ": no heartbeat for 75s, no phase running")
    assert (took.command, took.version) == ("deploy", "v9")
    assert lock.recoverable(None) and lock.recoverable({"command": "rollback"})
    assert not lock.recoverable({"command": "cutover"})
