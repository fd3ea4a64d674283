"""Merging our lifecycle rule into a bucket's rules (S3 replaces the whole configuration)."""

from __future__ import annotations

from typing import Any

from fabfile.backup.s3 import lifecycle_rule, merge_rules

LOGS = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
        "Expiration": {"Days": 3}}
EVERYTHING = {"ID": "janitor", "Status": "Enabled", "Filter": {},
              "Expiration": {"Days": 10}}
TAGGED = {"ID": "tagged", "Status": "Enabled",
          "Filter": {"Tag": {"Key": "tmp", "Value": "1"}}, "Expiration": {"Days": 1}}
LEGACY = {"ID": "legacy", "Status": "Enabled", "Prefix": "roster/", "Expiration": {"Days": 5}}
DISABLED = {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""},
            "Expiration": {"Days": 1}}


def test_our_rule() -> None:
    assert lifecycle_rule("/roster/prod/", 30, expire=True) == {
        "ID": "shipyard-backups-roster-prod", "Status": "Enabled",
        "Filter": {"Prefix": "roster/prod/"},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        "Expiration": {"Days": 30},
    }
    assert "Expiration" not in lifecycle_rule("prod", 30, expire=False)
    assert lifecycle_rule("", 7, expire=True)["Filter"] == {"Prefix": ""}


def test_other_rules_are_kept_and_ours_added() -> None:
    ours = lifecycle_rule("prod", 30, expire=True)
    merged, warnings = merge_rules([LOGS, TAGGED], ours)
    assert merged == [LOGS, TAGGED, ours]
    assert warnings == []


def test_our_old_rule_is_replaced_not_duplicated() -> None:
    old = lifecycle_rule("prod", 90, expire=True)
    new = lifecycle_rule("prod", 30, expire=True)
    merged, _ = merge_rules([old, LOGS], new)
    assert merged == [LOGS, new]
    again, _ = merge_rules(merged, new)
    assert again == merged


def test_rules_that_would_expire_backups_sooner_are_reported() -> None:
    ours = lifecycle_rule("roster/prod", 30, expire=True)
    merged, warnings = merge_rules([EVERYTHING, LEGACY, DISABLED, LOGS], ours)
    assert len(merged) == 5
    assert warnings == [
        "rule 'janitor' expires objects under '' after 10 days, sooner than backup retention",
        "rule 'legacy' expires objects under 'roster/' after 5 days, sooner than backup "
        "retention",
    ]


def test_without_our_expiry_any_overlapping_expiry_is_reported() -> None:
    ours: dict[str, Any] = lifecycle_rule("prod", 30, expire=False)
    _, warnings = merge_rules([{**EVERYTHING, "Expiration": {"Days": 400}}], ours)
    assert len(warnings) == 1
