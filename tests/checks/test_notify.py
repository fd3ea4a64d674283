"""`inv notify.test` and `inv notify.send` against a local stand-in for Slack's webhook."""

from __future__ import annotations

import pytest

from tests.checks.webhook import webhook
from tests.helpers import run_inv
from tests.support.net import free_port


def test_the_test_message_reaches_the_webhook_as_slack_expects_it() -> None:
    with webhook() as hook:
        proc = run_inv("notify.test", "--env=staging", extra_env={"SLACK_WEBHOOK_URL": hook.url},
                       timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test message delivered to the Slack webhook in SLACK_WEBHOOK_URL" in proc.stdout
    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["path"] == "/services/T000/B000/test"
    assert request["headers"]["Content-Type"] == "application/json"
    payload = hook.payloads[0]
    assert list(payload) == ["text"]
    assert payload["text"].startswith(
        ":information_source: [roster/staging] Test message from `inv notify.test`, sent by ")
    assert payload["text"].endswith("notifications for this environment work.")
    assert hook.url not in proc.stdout + proc.stderr


def test_a_custom_message_is_sent_as_given() -> None:
    with webhook() as hook:
        proc = run_inv("notify.test", "--env=prod", "--message=hello from the test",
                       extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hook.payloads == [{"text": ":information_source: [roster/prod] hello from the test"}]


def test_a_webhook_answering_500_fails_with_a_clear_message() -> None:
    with webhook(status=500) as hook:
        proc = run_inv("notify.test", "--env=staging", extra_env={"SLACK_WEBHOOK_URL": hook.url},
                       timeout=60)
    assert proc.returncode == 1
    assert len(hook.requests) == 1
    assert ("error: Slack notification not delivered: HTTP 500 from 127.0.0.1: no_service. "
            "Check the secret SLACK_WEBHOOK_URL") in proc.stderr
    assert hook.url not in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreachable_webhook_fails_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T/B/X"
    proc = run_inv("notify.test", "--env=staging", extra_env={"SLACK_WEBHOOK_URL": url},
                   timeout=60)
    assert proc.returncode == 1
    assert "error: Slack notification not delivered: ConnectError reaching 127.0.0.1" in proc.stderr
    assert url not in proc.stderr


def test_an_unset_webhook_secret_is_named() -> None:
    proc = run_inv("notify.test", "--env=staging", timeout=60)
    assert proc.returncode == 1
    assert ("the secret SLACK_WEBHOOK_URL (the Slack webhook of 'staging') is not set"
            in proc.stderr)


def test_an_environment_without_a_webhook_says_how_to_add_one() -> None:
    proc = run_inv("notify.test", "--env=local", timeout=60)
    assert proc.returncode == 1
    assert "environment 'local' has no Slack webhook: add notifications:" in proc.stderr


@pytest.mark.parametrize(("level", "icon"), [("success", ":white_check_mark:"),
                                             ("failure", ":rotating_light:")])
def test_send_posts_with_the_level_icon(level: str, icon: str) -> None:
    with webhook() as hook:
        proc = run_inv("notify.send", "--env=staging", f"--level={level}",
                       "--message", "deployed abc123 by someone: https://ci.example/run/1",
                       extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hook.payloads == [
        {"text": f"{icon} [roster/staging] deployed abc123 by someone: https://ci.example/run/1"}]


def test_send_redacts_secrets_in_the_message() -> None:
    dsn = "https://abcdef123456@sentry.example/42"
    with webhook() as hook:
        proc = run_inv("notify.send", "--env=staging", f"--message=oops {dsn}",
                       extra_env={"SLACK_WEBHOOK_URL": hook.url, "SENTRY_DSN": dsn}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hook.payloads == [{"text": ":information_source: [roster/staging] oops ***"}]


def test_send_without_a_webhook_warns_and_succeeds() -> None:
    proc = run_inv("notify.send", "--env=staging", "--message=x", timeout=60)
    assert proc.returncode == 0
    assert "nothing sent: environment 'staging' has no Slack webhook set" in proc.stdout


def test_send_fails_when_delivery_fails() -> None:
    with webhook(status=404) as hook:
        proc = run_inv("notify.send", "--env=staging", "--message=x",
                       extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 1
    assert "HTTP 404 from 127.0.0.1: no_service" in proc.stderr


def test_send_rejects_an_unknown_level() -> None:
    proc = run_inv("notify.send", "--env=staging", "--message=x", "--level=loud", timeout=60)
    assert proc.returncode == 1
    assert "--level must be one of info, success, warning, failure" in proc.stderr
