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
