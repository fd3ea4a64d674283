"""The alert a failed check posts: one message naming the failed checks, each failure with
its fix; and `inv doctor` and `inv backup.check` posting it through the real CLI, to a local
stand-in for Slack's webhook, for failures that need no network (secrets nobody set)."""

from __future__ import annotations

import json
from pathlib import Path

from fabfile.checks import alert
from fabfile.config import load_config
from tests.checks.webhook import webhook
from tests.helpers import DUMMY_SECRETS, env_tree, run_inv


def test_the_message_names_the_checks_and_writes_a_shared_fix_once() -> None:
    text = alert.message("inv doctor --env=prod", [
        alert.Failure("disk", "disk on vps1: 1.2 GB free", "free space"),
        alert.Failure("disk", "disk on vps2: 0.9 GB free", "free space"),
        alert.Failure("ssh", "ssh on vps3: refused", "check the host"),
        alert.Failure("dns", "dns on roster/prod: a.example does not resolve"),
    ])
    assert text == (
        "Checks failed: disk, ssh, dns (`inv doctor --env=prod`)\n"
        "• disk on vps1: 1.2 GB free\n"
        "• disk on vps2: 0.9 GB free\n"
        "   fix: free space\n"
        "• ssh on vps3: refused\n"
        "   fix: check the host\n"
        "• dns on roster/prod: a.example does not resolve")
    assert alert.message("inv backup.check --env=prod", [alert.Failure("backup-age", "old")]) \
        == "Check failed: backup-age (`inv backup.check --env=prod`)\n• old"


def test_sending_says_what_happened(tmp_path: Path) -> None:
    failures = [alert.Failure("ssh", "ssh on vps1: refused", "check the host")]
    no_secret = load_config("prod", environ={}, placeholder_secrets=True)
    assert alert.send(no_secret, "inv doctor", failures) == (
        False, "no Slack alert sent: the secret SLACK_WEBHOOK_URL is not set")
    local = load_config("local", environ=DUMMY_SECRETS, dotenv_dir=tmp_path)
    assert alert.send(local, "inv doctor", failures) == (
        False, "no Slack alert sent: no notifications.slack_webhook is configured")
    with webhook(status=404) as hook:
        broken = load_config("prod", environ={"SLACK_WEBHOOK_URL": hook.url},
                             placeholder_secrets=True)
        sent, note = alert.send(broken, "inv doctor", failures)
    assert not sent and note.startswith("Slack notification not delivered: HTTP 404")
    with webhook() as hook:
        cfg = load_config("prod", environ={"SLACK_WEBHOOK_URL": hook.url},
                          placeholder_secrets=True)
        assert alert.send(cfg, "inv doctor", failures) == (True, "alert sent to Slack")
    assert hook.payloads == [{"text": ":warning: [roster/prod] Check failed: ssh (`inv doctor`)\n"
                                      "• ssh on vps1: refused\n   fix: check the host"}]


def test_the_doctor_alerts_once_for_all_its_failures_and_keeps_its_json_clean(
        tmp_path: Path) -> None:
    with webhook() as hook:
        proc = run_inv("doctor", "--env=prod", "--only=bucket,backup-age", "--json",
                       env_dir=env_tree(tmp_path), extra_env={"SLACK_WEBHOOK_URL": hook.url},
                       timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)
    assert [(r["check"], r["status"]) for r in results] == [("bucket", "fail"),
                                                            ("backup-age", "fail")]
    assert proc.stderr.splitlines() == ["alert sent to Slack",
                                        "error: 2 check(s) failed: bucket, backup-age"]
    assert len(hook.payloads) == 1
    text = hook.payloads[0]["text"]
    assert text.startswith(":warning: [roster/prod] Checks failed: bucket, backup-age "
                           "(`inv doctor --env=prod`)\n• bucket on roster/prod: the secrets "
                           "PROD_BACKUP_ACCESS_KEY_ID and PROD_BACKUP_SECRET_ACCESS_KEY are "
                           "not set")
    assert text.count("fix: export PROD_BACKUP_ACCESS_KEY_ID") == 1


def test_the_doctor_without_a_webhook_says_so_and_still_fails(tmp_path: Path) -> None:
    proc = run_inv("doctor", "--env=prod", "--only=bucket", env_dir=env_tree(tmp_path),
                   timeout=60)
    assert proc.returncode == 1
    assert "FAIL  bucket" in proc.stdout
    assert "warning no Slack alert sent: the secret SLACK_WEBHOOK_URL is not set" in proc.stdout
    assert "error: 1 check(s) failed: bucket" in proc.stderr


def test_backup_check_fails_and_alerts_once(tmp_path: Path) -> None:
    with webhook() as hook:
        proc = run_inv("backup.check", "--env=staging", env_dir=env_tree(tmp_path),
                       extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 1
    assert "FAIL  backup-age  roster/staging  the secrets STAGING_BACKUP_ACCESS_KEY_ID and " \
           "STAGING_BACKUP_SECRET_ACCESS_KEY are not set" in proc.stdout
    assert "error: 1 check(s) failed: backup-age" in proc.stderr
    assert [p["text"].split("\n")[0] for p in hook.payloads] == [
        ":warning: [roster/staging] Check failed: backup-age (`inv backup.check --env=staging`)"]


def test_backup_check_needs_a_backup_section(tmp_path: Path) -> None:
    proc = run_inv("backup.check", "--env=local", env_dir=env_tree(tmp_path), timeout=60)
    assert proc.returncode == 1
    assert "error: environment local has no backup section: nothing to check" in proc.stderr
    assert "Traceback" not in proc.stderr
