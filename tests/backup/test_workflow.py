"""The scheduled backup workflow: when it runs, what it calls, which secrets reach what.
(Schema, zizmor and "every inv call names a real task" cover it in tests/workflows.)"""

from __future__ import annotations

import json
from typing import Any

import yaml

from fabfile import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "backup.yml"
BACKUP_SECRETS = {"PROD_DATABASE_URL", "PROD_BACKUP_ACCESS_KEY_ID",
                  "PROD_BACKUP_SECRET_ACCESS_KEY", "SLACK_WEBHOOK_URL"}


def load() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)
    return data


def test_schedule_and_calls() -> None:
    wf = load()
    assert [s["cron"] for s in wf["on"]["schedule"]] == ["0 2 * * *", "30 4 * * 0"]
    runs = {job: [s.get("run", "") for s in j["steps"]] for job, j in wf["jobs"].items()}
    assert ".venv/bin/inv backup.create --env=prod --label=nightly" in runs["create"]
    assert ".venv/bin/inv backup.prune --env=prod" in runs["create"]
    assert ".venv/bin/inv backup.verify --env=prod --date=latest" in runs["verify"]
    assert "'0 2 * * *'" in wf["jobs"]["create"]["if"]
    assert "'30 4 * * 0'" in wf["jobs"]["verify"]["if"]


def test_least_privilege_and_secrets_only_where_used() -> None:
    wf = load()
    assert wf["permissions"] == {}
    for job in wf["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
        assert "secrets." not in json.dumps({k: v for k, v in job.items() if k != "steps"})
        for step in job["steps"]:
            assert "secrets." not in json.dumps({k: v for k, v in step.items() if k != "env"})
            assert "${{" not in step.get("run", "")
            given = {k for k, v in step.get("env", {}).items() if "secrets." in str(v)}
            if "inv backup." in step.get("run", ""):
                assert given <= BACKUP_SECRETS
                assert "PROD_BACKUP_SECRET_ACCESS_KEY" in given
            elif given:
                assert given == {"SSH_PRIVATE_KEY", "SSH_KNOWN_HOSTS"}
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
